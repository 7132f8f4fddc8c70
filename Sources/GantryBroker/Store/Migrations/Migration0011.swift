extension Migration {
    /// The people-facing half: job types with their argument schemas and saved presets, the dashboard's sign-in
    /// sessions, its audit log and its tracked bulk actions, and an index for searching jobs by their args.
    static let v0011 = Migration(version: 11, name: "job types, dashboard sessions, audit, args search", statements: [
        // A type outlives the workers that announced it. `args_schema` is `json`, kept as sent: the run form
        // shows properties in the order the schema lists them, which `jsonb` would not keep.
        #"""
        CREATE TABLE gantry.job_types (
            type         text        PRIMARY KEY,
            queue        text,
            description  text,
            args_schema  json,
            runnable     boolean     NOT NULL DEFAULT true,
            source       text        NOT NULL CHECK (source IN ('worker', 'rpc', 'config')),
            announced_at timestamptz,
            created_at   timestamptz NOT NULL DEFAULT now(),
            updated_at   timestamptz NOT NULL DEFAULT now()
        )
        """#,
        #"""
        CREATE TABLE gantry.type_presets (
            type       text        NOT NULL,
            name       text        NOT NULL,
            args       json        NOT NULL,
            created_by text        NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (type, name)
        )
        """#,
        // Only a digest of the session id is kept, as with tokens: a copy of the table signs no one in.
        #"""
        CREATE TABLE gantry.dashboard_sessions (
            digest     bytea       PRIMARY KEY,
            token_name text        NOT NULL,
            role       text        NOT NULL,
            csrf       text        NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL
        )
        """#,
        #"""
        CREATE INDEX dashboard_sessions_expiry ON gantry.dashboard_sessions (expires_at)
        """#,
        #"""
        CREATE TABLE gantry.audit_log (
            id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at      timestamptz NOT NULL DEFAULT now(),
            actor   text        NOT NULL,
            action  text        NOT NULL,
            target  text        NOT NULL,
            details json,
            outcome text        NOT NULL
        )
        """#,
        // "Retry all 40,000 matching": run by a broker in the background, in batches, with its progress here.
        #"""
        CREATE TABLE gantry.bulk_actions (
            id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            action      text        NOT NULL CHECK (action IN ('retry', 'cancel', 'discard')),
            filter      json        NOT NULL,
            actor       text        NOT NULL,
            broker_id   uuid        NOT NULL,
            state       text        NOT NULL CHECK (state IN ('running', 'completed', 'failed')),
            matched     bigint      NOT NULL DEFAULT 0,
            done        bigint      NOT NULL DEFAULT 0,
            skipped     bigint      NOT NULL DEFAULT 0,
            error       text,
            started_at  timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz
        )
        """#,
        // Args search (`{"user_id": 7}` contained in args) through a GIN index over the args as jsonb.
        #"""
        CREATE INDEX jobs_args ON gantry.jobs USING gin ((args::jsonb) jsonb_path_ops)
        """#,
        #"""
        CREATE INDEX finished_jobs_args ON gantry.finished_jobs USING gin ((args::jsonb) jsonb_path_ops)
        """#,
    ])
}
