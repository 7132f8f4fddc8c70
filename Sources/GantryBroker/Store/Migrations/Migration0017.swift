extension Migration {
    /// Backlog alerts: a queue whose oldest available job waited longer than its `backlog_ms` raises
    /// `queue.backlog` once (`alerted_at` set by the one broker whose update wins), again only after it recovered.
    /// Apart from `queue_limits`, whose rows put a queue's claims on the limited path.
    static let v0017 = Migration(version: 17, name: "queue backlog alerts", statements: [
        #"""
        CREATE TABLE gantry.queue_alerts (
            queue      text        PRIMARY KEY,
            backlog_ms bigint      NOT NULL CHECK (backlog_ms > 0),
            alerted_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """#,
    ])
}
