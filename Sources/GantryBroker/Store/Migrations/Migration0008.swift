extension Migration {
    /// Unique jobs: while a job with a `unique_key` waits or runs (it is in `jobs` exactly then), no second job
    /// with that key can be inserted, by any broker. Keys stored before this was enforced are kept on the oldest
    /// job of each key and cleared on later duplicates, so the index can be built.
    static let v0008 = Migration(version: 8, name: "unique jobs", statements: [
        #"""
        UPDATE gantry.jobs j SET unique_key = NULL
        WHERE unique_key IS NOT NULL
          AND EXISTS (SELECT 1 FROM gantry.jobs older WHERE older.unique_key = j.unique_key AND older.id < j.id)
        """#,
        #"""
        CREATE UNIQUE INDEX jobs_unique_key ON gantry.jobs (unique_key) WHERE unique_key IS NOT NULL
        """#,
    ])
}
