extension Migration {
    /// Events and subscriptions. Publishing is one SQL function, `gantry.publish`, for the broker's
    /// `events.publish` and for applications publishing inside their own transactions alike: the event row and
    /// every job or operation its subscriptions start commit together (rolled back, nothing happened).
    static let v0014 = Migration(version: 14, name: "events and subscriptions", statements: [
        // `payload` is `json`, kept as published (a job target passes it on as its args); filters read it as jsonb.
        #"""
        CREATE TABLE gantry.events (
            id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            type         text        NOT NULL,
            payload      json        NOT NULL,
            key          text,
            replay_of    bigint,
            published_at timestamptz NOT NULL DEFAULT now(),
            triggered    jsonb       NOT NULL DEFAULT '[]'
        )
        """#,
        "CREATE INDEX events_type ON gantry.events (type, id)",
        "CREATE INDEX events_key ON gantry.events (key, published_at) WHERE key IS NOT NULL",
        "CREATE INDEX events_age ON gantry.events (published_at)",
        // `event` is an exact type, `prefix.*` or `*`. `target` is stored with its defaults filled in.
        #"""
        CREATE TABLE gantry.subscriptions (
            name       text        PRIMARY KEY,
            event      text        NOT NULL,
            filter     jsonb,
            target     json        NOT NULL,
            source     text        NOT NULL CHECK (source IN ('config', 'rpc')),
            paused_at  timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """#,
        // Starts what one subscription targets for one event; answers its trigger record.
        #"""
        CREATE FUNCTION gantry.trigger_subscription(sub gantry.subscriptions, event_id bigint, event_type text, event_payload json)
        RETURNS jsonb LANGUAGE plpgsql AS $fn$
        DECLARE
            target jsonb := sub.target::jsonb;
            new_id bigint;
            op jsonb;
        BEGIN
            IF target ? 'operation' THEN
                op := target -> 'operation';
                INSERT INTO gantry.operations (name, state, queue, globals, initial_globals, branches)
                VALUES (op ->> 'name', 'running', op ->> 'queue',
                        (op -> 'globals') || jsonb_build_object('event', jsonb_build_object(
                            'id', event_id::text, 'type', event_type, 'payload', event_payload::jsonb)),
                        (op -> 'globals') || jsonb_build_object('event', jsonb_build_object(
                            'id', event_id::text, 'type', event_type, 'payload', event_payload::jsonb)),
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
        // Publishes an event: deduplicated by key within dedupe_ms (a replay never is), recorded, and every
        // active subscription whose pattern and filter match triggered, in name order.
        #"""
        CREATE FUNCTION gantry.publish(type text, payload json DEFAULT '{}', key text DEFAULT NULL,
                                       dedupe_ms bigint DEFAULT 86400000, replay_of bigint DEFAULT NULL)
        RETURNS jsonb LANGUAGE plpgsql AS $fn$
        DECLARE
            event_type text := type;
            event_key text := key;
            existing gantry.events;
            new_id bigint;
            sub gantry.subscriptions;
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
            UPDATE gantry.events SET triggered = fired WHERE id = new_id;
            RETURN jsonb_build_object('id', new_id::text, 'duplicate', false, 'triggered', fired);
        END
        $fn$
        """#,
    ])
}
