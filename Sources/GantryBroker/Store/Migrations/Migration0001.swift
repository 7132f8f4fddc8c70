extension Migration {
    /// The job tables, their claim indexes, and counters kept by triggers so `stats` never counts rows.
    ///
    /// Live jobs (scheduled, available, reserved) stay in `jobs`, which therefore stays small however many jobs
    /// have passed through; finished ones move to `finished_jobs`, which only grows and is pruned by age.
    static let v0001 = Migration(version: 1, name: "create jobs", statements: [
        #"""
        CREATE TABLE gantry.jobs (
            id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            queue            text        NOT NULL,
            type             text        NOT NULL,
            args             jsonb       NOT NULL DEFAULT '[]',
            state            text        NOT NULL CHECK (state IN ('scheduled', 'available', 'reserved')),
            priority         smallint    NOT NULL CHECK (priority BETWEEN 1 AND 32767),
            run_at           timestamptz NOT NULL,
            attempt          integer     NOT NULL DEFAULT 0,
            max_attempts     integer     NOT NULL,
            timeout_ms       bigint,
            expires_at       timestamptz,
            unique_key       text,
            tags             text[]      NOT NULL DEFAULT '{}',
            meta             jsonb       NOT NULL DEFAULT '{}',
            errors           jsonb       NOT NULL DEFAULT '[]',
            enqueued_at      timestamptz NOT NULL DEFAULT now(),
            reserved_at      timestamptz,
            lease_expires_at timestamptz,
            session_id       uuid,
            broker_id        uuid
        ) WITH (fillfactor = 85,
                autovacuum_vacuum_scale_factor = 0.01,
                autovacuum_vacuum_threshold = 500,
                autovacuum_analyze_scale_factor = 0.02,
                autovacuum_vacuum_cost_delay = 0)
        """#,
        // The hot query: the next available job of a queue in (priority, run_at, enqueue order).
        #"""
        CREATE INDEX jobs_claim ON gantry.jobs (queue, priority, run_at, id) WHERE state = 'available'
        """#,
        // Queue latency: the oldest available job of a queue.
        #"""
        CREATE INDEX jobs_available_since ON gantry.jobs (queue, run_at) WHERE state = 'available'
        """#,
        #"""
        CREATE INDEX jobs_due ON gantry.jobs (run_at) WHERE state = 'scheduled'
        """#,
        #"""
        CREATE INDEX jobs_lease_expiry ON gantry.jobs (lease_expires_at) WHERE state = 'reserved'
        """#,
        #"""
        CREATE INDEX jobs_session ON gantry.jobs (session_id) WHERE state = 'reserved'
        """#,
        // Jobs with a queue timeout, for the sweep that expires them.
        #"""
        CREATE INDEX jobs_expiry ON gantry.jobs (expires_at) WHERE expires_at IS NOT NULL AND state <> 'reserved'
        """#,
        #"""
        CREATE TABLE gantry.finished_jobs (
            id               bigint      PRIMARY KEY,
            queue            text        NOT NULL,
            type             text        NOT NULL,
            args             jsonb       NOT NULL,
            state            text        NOT NULL CHECK (state IN ('completed', 'dead', 'cancelled', 'expired')),
            priority         smallint    NOT NULL,
            run_at           timestamptz NOT NULL,
            attempt          integer     NOT NULL,
            max_attempts     integer     NOT NULL,
            timeout_ms       bigint,
            expires_at       timestamptz,
            unique_key       text,
            tags             text[]      NOT NULL,
            meta             jsonb       NOT NULL,
            errors           jsonb       NOT NULL,
            enqueued_at      timestamptz NOT NULL,
            reserved_at      timestamptz,
            finished_at      timestamptz NOT NULL DEFAULT now(),
            result           jsonb
        )
        """#,
        #"""
        CREATE INDEX finished_jobs_age ON gantry.finished_jobs (finished_at)
        """#,
        // Counters per queue: one per job state plus `processed` and `failed` attempts. Each backend writes its
        // own slot, so concurrent transactions do not queue up behind one hot row; readers sum the slots.
        #"""
        CREATE TABLE gantry.queue_counters (
            queue   text     NOT NULL,
            counter text     NOT NULL,
            slot    smallint NOT NULL,
            value   bigint   NOT NULL,
            PRIMARY KEY (queue, counter, slot)
        )
        """#,
        #"""
        CREATE FUNCTION gantry.bump_counters() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            -- Rows are touched in (queue, counter) order so two transactions sharing a slot cannot deadlock.
            IF TG_OP = 'INSERT' THEN
                INSERT INTO gantry.queue_counters AS c (queue, counter, slot, value)
                SELECT queue, state, pg_backend_pid() % 64, count(*) FROM new_rows GROUP BY queue, state ORDER BY queue, state
                ON CONFLICT (queue, counter, slot) DO UPDATE SET value = c.value + excluded.value;
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO gantry.queue_counters AS c (queue, counter, slot, value)
                SELECT queue, state, pg_backend_pid() % 64, -count(*) FROM old_rows GROUP BY queue, state ORDER BY queue, state
                ON CONFLICT (queue, counter, slot) DO UPDATE SET value = c.value + excluded.value;
            ELSE
                INSERT INTO gantry.queue_counters AS c (queue, counter, slot, value)
                SELECT queue, state, pg_backend_pid() % 64, sum(delta) FROM (
                    SELECT queue, state, 1 AS delta FROM new_rows
                    UNION ALL
                    SELECT queue, state, -1 AS delta FROM old_rows
                ) changes GROUP BY queue, state HAVING sum(delta) <> 0 ORDER BY queue, state
                ON CONFLICT (queue, counter, slot) DO UPDATE SET value = c.value + excluded.value;
            END IF;
            RETURN NULL;
        END
        $fn$
        """#,
        #"""
        CREATE TRIGGER jobs_count_insert AFTER INSERT ON gantry.jobs
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gantry.bump_counters()
        """#,
        #"""
        CREATE TRIGGER jobs_count_update AFTER UPDATE ON gantry.jobs
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gantry.bump_counters()
        """#,
        #"""
        CREATE TRIGGER jobs_count_delete AFTER DELETE ON gantry.jobs
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION gantry.bump_counters()
        """#,
        #"""
        CREATE TRIGGER finished_count_insert AFTER INSERT ON gantry.finished_jobs
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gantry.bump_counters()
        """#,
        #"""
        CREATE TRIGGER finished_count_update AFTER UPDATE ON gantry.finished_jobs
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gantry.bump_counters()
        """#,
        #"""
        CREATE TRIGGER finished_count_delete AFTER DELETE ON gantry.finished_jobs
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION gantry.bump_counters()
        """#,
    ])
}
