extension Migration {
    /// Queues an operator has paused: a paused queue hands out nothing, across restarts and on every broker.
    static let v0003 = Migration(version: 3, name: "paused queues", statements: [
        #"""
        CREATE TABLE gantry.paused_queues (
            queue     text        PRIMARY KEY,
            paused_at timestamptz NOT NULL DEFAULT now()
        )
        """#,
    ])
}
