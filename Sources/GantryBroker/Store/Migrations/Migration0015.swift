extension Migration {
    /// Packages: named, configurable operation templates. An execution is an operation started from a package
    /// (by hand, by its cron schedule or by an event), carrying the package's name and the config it runs with;
    /// `gantry.run_package` starts one, the same way for `packages.run`, the cron chore and `gantry.publish`.
    static let v0015 = Migration(version: 15, name: "packages", statements: [
        // `steps` is `json`, stored as checked (defaults filled in) in the order written.
        #"""
        CREATE TABLE gantry.packages (
            name        text        PRIMARY KEY,
            description text,
            steps       json        NOT NULL,
            config      jsonb       NOT NULL DEFAULT '{}',
            cron        text,
            timezone    text        NOT NULL DEFAULT 'UTC',
            events      text[]      NOT NULL DEFAULT '{}',
            manual      boolean     NOT NULL DEFAULT true,
            active      boolean     NOT NULL DEFAULT true,
            queue       text        NOT NULL,
            source      text        NOT NULL CHECK (source IN ('config', 'rpc')),
            next_run_at timestamptz,
            last_run_at timestamptz,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        )
        """#,
        "CREATE INDEX packages_due ON gantry.packages (next_run_at) WHERE active AND next_run_at IS NOT NULL",
        #"""
        ALTER TABLE gantry.operations
            ADD COLUMN package           text,
            ADD COLUMN package_config    jsonb,
            ADD COLUMN started_by        text CHECK (started_by IN ('manual', 'cron', 'event')),
            ADD COLUMN saved_name        text,
            ADD COLUMN saved_description text,
            ADD COLUMN saved_at          timestamptz
        """#,
        "CREATE INDEX operations_package ON gantry.operations (package, id) WHERE package IS NOT NULL",
        "CREATE UNIQUE INDEX operations_saved ON gantry.operations (package, saved_name) WHERE saved_name IS NOT NULL",
        // What each step's job answered, kept with its run: an execution's results outlive its jobs' retention.
        "ALTER TABLE gantry.operation_steps ADD COLUMN result json",
        #"""
        CREATE FUNCTION gantry.operation_step_result() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            UPDATE gantry.operation_steps SET result = NEW.result WHERE id = NEW.step_id;
            RETURN NULL;
        END
        $fn$
        """#,
        #"""
        CREATE TRIGGER operation_step_result AFTER INSERT ON gantry.finished_jobs
            FOR EACH ROW WHEN (NEW.step_id IS NOT NULL AND NEW.result IS NOT NULL) EXECUTE FUNCTION gantry.operation_step_result()
        """#,
        // Starts an execution: NULL when there is no such package or it is inactive.
        #"""
        CREATE FUNCTION gantry.run_package(pkg_name text, overrides jsonb, via text, start_globals jsonb DEFAULT '{}')
        RETURNS bigint LANGUAGE plpgsql AS $fn$
        DECLARE
            pkg gantry.packages;
            new_id bigint;
        BEGIN
            SELECT * INTO pkg FROM gantry.packages WHERE name = pkg_name;
            IF NOT FOUND OR NOT pkg.active THEN RETURN NULL; END IF;
            INSERT INTO gantry.operations (name, state, queue, globals, initial_globals, branches, package, package_config, started_by)
            VALUES (pkg.name, 'running', pkg.queue, coalesce(start_globals, '{}'), coalesce(start_globals, '{}'),
                    json_build_object('main', pkg.steps), pkg.name, pkg.config || coalesce(overrides, '{}'), via)
            RETURNING id INTO new_id;
            PERFORM gantry.operation_enter(new_id, 'main', 0, false);
            PERFORM gantry.count_operation(pkg.name, 'started');
            RETURN new_id;
        END
        $fn$
        """#,
        // Subscriptions may target a package now.
        #"""
        CREATE OR REPLACE FUNCTION gantry.trigger_subscription(sub gantry.subscriptions, event_id bigint, event_type text, event_payload json)
        RETURNS jsonb LANGUAGE plpgsql AS $fn$
        DECLARE
            target jsonb := sub.target::jsonb;
            new_id bigint;
            op jsonb;
            event_globals jsonb := jsonb_build_object('event', jsonb_build_object(
                'id', event_id::text, 'type', event_type, 'payload', event_payload::jsonb));
        BEGIN
            IF target ? 'package' THEN
                new_id := gantry.run_package(target ->> 'package', target -> 'config', 'event', event_globals);
                IF new_id IS NULL THEN
                    RETURN jsonb_build_object('subscription', sub.name, 'package', target ->> 'package',
                                              'skipped', 'the package is inactive or was deleted');
                END IF;
                RETURN jsonb_build_object('subscription', sub.name, 'package', target ->> 'package', 'operation_id', new_id::text);
            END IF;
            IF target ? 'operation' THEN
                op := target -> 'operation';
                INSERT INTO gantry.operations (name, state, queue, globals, initial_globals, branches)
                VALUES (op ->> 'name', 'running', op ->> 'queue', (op -> 'globals') || event_globals, (op -> 'globals') || event_globals,
                        -- the plan as stored with the subscription, in its written order
                        (sub.target -> 'operation' -> 'branches'))
                RETURNING id INTO new_id;
                PERFORM gantry.operation_enter(new_id, 'main', 0, false);
                PERFORM gantry.count_operation(op ->> 'name', 'started');
                RETURN jsonb_build_object('subscription', sub.name, 'operation_id', new_id::text);
            END IF;
            INSERT INTO gantry.jobs (queue, type, args, state, priority, run_at, max_attempts, meta)
            VALUES (target ->> 'queue', target ->> 'type',
                    CASE WHEN target -> 'args' = '"$payload"'::jsonb THEN event_payload ELSE sub.target -> 'args' END,
                    'available', (target ->> 'priority')::smallint, now(), (target ->> 'max_attempts')::integer,
                    json_build_object('event_id', event_id::text, 'event_type', event_type, 'subscription', sub.name))
            RETURNING id INTO new_id;
            PERFORM pg_notify('gantry_jobs', 'sql ' || (target ->> 'queue') || ' 1');
            RETURN jsonb_build_object('subscription', sub.name, 'job_id', new_id::text);
        END
        $fn$
        """#,
        // Publishing also starts every active package whose `triggers.events` names the event (after the
        // subscriptions, in name order).
        #"""
        CREATE OR REPLACE FUNCTION gantry.publish(type text, payload json DEFAULT '{}', key text DEFAULT NULL,
                                                  dedupe_ms bigint DEFAULT 86400000, replay_of bigint DEFAULT NULL)
        RETURNS jsonb LANGUAGE plpgsql AS $fn$
        DECLARE
            event_type text := type;
            event_key text := key;
            existing gantry.events;
            new_id bigint;
            sub gantry.subscriptions;
            pkg_name text;
            execution_id bigint;
            fired jsonb := '[]';
        BEGIN
            IF event_type IS NULL OR octet_length(event_type) NOT BETWEEN 1 AND 255 OR event_type ~ '[[:cntrl:][:space:]]' OR event_type LIKE '%*' THEN
                RAISE EXCEPTION 'gantry.publish: type must be 1 to 255 bytes without spaces or control characters, not ending in * (got %)', event_type
                    USING ERRCODE = '22023';
            END IF;
            IF event_key IS NOT NULL AND replay_of IS NULL THEN
                -- Two publishes of one key take turns, so the second sees the first.
                PERFORM pg_advisory_xact_lock(hashtextextended('gantry.events:' || event_key, 0));
                SELECT * INTO existing FROM gantry.events e
                WHERE e.key = event_key AND e.published_at > now() - dedupe_ms * interval '1 millisecond'
                ORDER BY e.id DESC LIMIT 1;
                IF FOUND THEN
                    RETURN jsonb_build_object('id', existing.id::text, 'duplicate', true, 'triggered', existing.triggered);
                END IF;
            END IF;
            INSERT INTO gantry.events (type, payload, key, replay_of)
            VALUES (event_type, coalesce(payload, '{}'), event_key, replay_of)
            RETURNING id INTO new_id;
            FOR sub IN
                SELECT * FROM gantry.subscriptions s
                WHERE s.paused_at IS NULL
                  AND (s.event = event_type OR s.event = '*'
                       OR (s.event LIKE '%.*' AND starts_with(event_type, left(s.event, -1))))
                  AND (s.filter IS NULL OR coalesce(payload, '{}')::jsonb @> s.filter)
                ORDER BY s.name
            LOOP
                fired := fired || gantry.trigger_subscription(sub, new_id, event_type, coalesce(payload, '{}'));
            END LOOP;
            FOR pkg_name IN
                SELECT p.name FROM gantry.packages p
                WHERE p.active AND EXISTS (
                    SELECT 1 FROM unnest(p.events) AS pattern
                    WHERE pattern = event_type OR pattern = '*'
                       OR (pattern LIKE '%.*' AND starts_with(event_type, left(pattern, -1))))
                ORDER BY p.name
            LOOP
                execution_id := gantry.run_package(pkg_name, NULL, 'event', jsonb_build_object('event', jsonb_build_object(
                    'id', new_id::text, 'type', event_type, 'payload', coalesce(payload, '{}')::jsonb)));
                fired := fired || jsonb_build_object('package', pkg_name, 'operation_id', execution_id::text);
            END LOOP;
            UPDATE gantry.events SET triggered = fired WHERE id = new_id;
            RETURN jsonb_build_object('id', new_id::text, 'duplicate', false, 'triggered', fired);
        END
        $fn$
        """#,
    ])
}
