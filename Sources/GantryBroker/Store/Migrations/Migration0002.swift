extension Migration {
    /// Brokers sign in and heartbeat here, so when one dies the others can put back the jobs its sessions held.
    static let v0002 = Migration(version: 2, name: "broker heartbeats", statements: [
        #"""
        CREATE TABLE gantry.brokers (
            id           uuid        PRIMARY KEY,
            host         text        NOT NULL,
            version      text        NOT NULL,
            started_at   timestamptz NOT NULL DEFAULT now(),
            heartbeat_at timestamptz NOT NULL DEFAULT now()
        )
        """#,
        #"""
        CREATE INDEX jobs_reserved_by_broker ON gantry.jobs (broker_id) WHERE state = 'reserved'
        """#,
    ])
}
