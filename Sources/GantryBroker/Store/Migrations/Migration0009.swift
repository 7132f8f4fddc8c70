extension Migration {
    /// Scheduling: cron schedules, per-queue limits with the start log a rate limit counts, and unique keys
    /// that stay taken for a while after their job completed.
    static let v0009 = Migration(version: 9, name: "cron, queue limits, unique windows", statements: [
        // One row per schedule. A tick fires by moving `next_run_at` on from exactly the tick being fired, in
        // the transaction that enqueues its job, so concurrent brokers cannot both fire it.
        #"""
        CREATE TABLE gantry.cron_schedules (
            name        text        PRIMARY KEY,
            cron        text        NOT NULL,
            timezone    text        NOT NULL,
            type        text        NOT NULL,
            args        jsonb       NOT NULL,
            queue       text        NOT NULL,
            priority    smallint    NOT NULL CHECK (priority BETWEEN 1 AND 32767),
            description text,
            source      text        NOT NULL CHECK (source IN ('config', 'rpc')),
            paused_at   timestamptz,
            next_run_at timestamptz,
            last_run_at timestamptz,
            last_job_id bigint,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        )
        """#,
        #"""
        CREATE INDEX cron_schedules_due ON gantry.cron_schedules (next_run_at) WHERE paused_at IS NULL
        """#,
        // Claims on a limited queue lock its row first, so they take turns and each sees the others' claims.
        #"""
        CREATE TABLE gantry.queue_limits (
            queue          text        PRIMARY KEY,
            concurrency    integer     CHECK (concurrency > 0),
            rate_limit     integer     CHECK (rate_limit > 0),
            rate_period_ms bigint      CHECK (rate_period_ms > 0),
            source         text        NOT NULL CHECK (source IN ('config', 'rpc')),
            updated_at     timestamptz NOT NULL DEFAULT now(),
            CHECK ((rate_limit IS NULL) = (rate_period_ms IS NULL))
        )
        """#,
        // When jobs of rate-limited queues started, kept for one period (the cleaner drops older rows).
        #"""
        CREATE TABLE gantry.queue_starts (
            queue      text        NOT NULL,
            started_at timestamptz NOT NULL
        )
        """#,
        #"""
        CREATE INDEX queue_starts_window ON gantry.queue_starts (queue, started_at)
        """#,
        #"""
        ALTER TABLE gantry.jobs ADD COLUMN unique_for_ms bigint
        """#,
        // A completed job's key, taken until `held_until`. Written in the transaction that moves the job out of
        // `jobs`, so the key is never free in between.
        #"""
        CREATE TABLE gantry.unique_holds (
            unique_key text        PRIMARY KEY,
            job_id     bigint      NOT NULL,
            held_until timestamptz NOT NULL
        )
        """#,
        #"""
        CREATE INDEX unique_holds_expiry ON gantry.unique_holds (held_until)
        """#,
    ])
}
