extension Migration {
    /// The dashboard's job filters on the finished jobs (millions of rows): newest first within a queue, a type, or
    /// the rare states people look for (dead, cancelled, expired), each an index walked backwards by id instead of
    /// a scan of the whole table. Completed jobs, nearly all of them, stay out of the state index.
    static let v0012 = Migration(version: 12, name: "finished jobs by queue, type and state", statements: [
        "CREATE INDEX finished_jobs_queue ON gantry.finished_jobs (queue, id)",
        "CREATE INDEX finished_jobs_type ON gantry.finished_jobs (type, id)",
        "CREATE INDEX finished_jobs_failed ON gantry.finished_jobs (state, id) WHERE state <> 'completed'",
    ])
}
