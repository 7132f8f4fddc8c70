extension Migration {
    /// Job args, meta and results are kept as `json`, the text the client sent, instead of `jsonb`, which sorts
    /// members, drops repeated ones and respells numbers (`1.0` came back as `1`). `errors`, which Gantry writes
    /// itself, stays `jsonb`. `gantry.enqueue` takes `json` for the same reason: a `jsonb` value needs `::json`.
    static let v0010 = Migration(version: 10, name: "args, meta and results as sent", statements: [
        "ALTER TABLE gantry.jobs ALTER COLUMN args DROP DEFAULT, ALTER COLUMN meta DROP DEFAULT",
        "ALTER TABLE gantry.jobs ALTER COLUMN args TYPE json USING args::json, ALTER COLUMN meta TYPE json USING meta::json",
        "ALTER TABLE gantry.jobs ALTER COLUMN args SET DEFAULT '[]', ALTER COLUMN meta SET DEFAULT '{}'",
        """
        ALTER TABLE gantry.finished_jobs ALTER COLUMN args TYPE json USING args::json,
            ALTER COLUMN meta TYPE json USING meta::json, ALTER COLUMN result TYPE json USING result::json
        """,
        "ALTER TABLE gantry.cron_schedules ALTER COLUMN args TYPE json USING args::json",
        "DROP FUNCTION gantry.enqueue(text, jsonb, text, integer, timestamptz, integer, bigint, timestamptz, text[], jsonb)",
        #"""
        CREATE FUNCTION gantry.enqueue(
            type         text,
            args         json        DEFAULT '[]',
            queue        text        DEFAULT 'default',
            priority     integer     DEFAULT 16383,
            run_at       timestamptz DEFAULT NULL,
            max_attempts integer     DEFAULT 25,
            timeout_ms   bigint      DEFAULT NULL,
            expires_at   timestamptz DEFAULT NULL,
            tags         text[]      DEFAULT '{}',
            meta         json        DEFAULT '{}'
        ) RETURNS text LANGUAGE plpgsql AS $fn$
        DECLARE
            due timestamptz := coalesce(run_at, now());
            new_id bigint;
        BEGIN
            IF type IS NULL OR octet_length(type) NOT BETWEEN 1 AND 255 OR type ~ '[[:cntrl:]]' THEN
                RAISE EXCEPTION 'gantry.enqueue: type must be 1 to 255 bytes of text without control characters'
                    USING ERRCODE = '22023';
            END IF;
            IF queue IS NULL OR queue !~ '^[A-Za-z0-9_.:-]{1,128}$' THEN
                RAISE EXCEPTION 'gantry.enqueue: queue must be 1 to 128 characters of letters, digits, _, -, . or : (got %)', queue
                    USING ERRCODE = '22023';
            END IF;
            IF priority IS NULL OR priority NOT BETWEEN 1 AND 32767 THEN
                RAISE EXCEPTION 'gantry.enqueue: priority must be between 1 (most urgent) and 32767 (got %)', priority
                    USING ERRCODE = '22023';
            END IF;
            IF max_attempts IS NULL OR max_attempts < 1 THEN
                RAISE EXCEPTION 'gantry.enqueue: max_attempts must be at least 1 (got %)', max_attempts USING ERRCODE = '22023';
            END IF;
            INSERT INTO gantry.jobs (queue, type, args, state, priority, run_at, max_attempts, timeout_ms, expires_at, tags, meta)
            VALUES (queue, type, coalesce(args, '[]'), CASE WHEN due > now() THEN 'scheduled' ELSE 'available' END,
                    priority, due, max_attempts, timeout_ms, expires_at, coalesce(tags, '{}'), coalesce(meta, '{}'))
            RETURNING id INTO new_id;
            IF due <= now() THEN
                -- Same payload as the brokers' own (`<from> <queue> <count>`); delivered on commit, never before.
                PERFORM pg_notify('gantry_jobs', 'sql ' || queue || ' 1');
            END IF;
            RETURN new_id::text;
        END
        $fn$
        """#,
    ])
}
