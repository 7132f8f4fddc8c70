extension Migration {
    /// Each broker publishes the workers connected to it with its heartbeat, so any broker can list them all.
    static let v0004 = Migration(version: 4, name: "workers on brokers", statements: [
        #"""
        ALTER TABLE gantry.brokers ADD COLUMN workers jsonb NOT NULL DEFAULT '[]'
        """#,
    ])
}
