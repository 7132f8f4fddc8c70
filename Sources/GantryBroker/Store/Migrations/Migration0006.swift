extension Migration {
    /// When an operator asked to cancel a job a worker was running: the worker hears it (from `extend` and
    /// `ack`), and the job ends `cancelled` rather than being retried. Kept on finished jobs for inspection.
    static let v0006 = Migration(version: 6, name: "cancel running jobs", statements: [
        #"""
        ALTER TABLE gantry.jobs ADD COLUMN cancel_requested_at timestamptz
        """#,
        #"""
        ALTER TABLE gantry.finished_jobs ADD COLUMN cancel_requested_at timestamptz
        """#,
    ])
}
