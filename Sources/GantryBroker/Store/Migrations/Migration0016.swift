extension Migration {
    /// Lifecycle events for `watch` and webhooks. `gantry.emit` is the one place an event is raised: it writes a
    /// delivery for every webhook that wants it (the outbox, in the transaction of the change it reports, so a
    /// rolled-back change reports nothing and a crash loses no delivery) and tells every broker (NOTIFY, sent on
    /// commit), whose watching connections hear it. Triggers raise the job and operation events wherever the
    /// change is made (a nack, a lease that ran out, a closed connection, an operator's retry).
    static let v0016 = Migration(version: 16, name: "lifecycle events and webhooks", statements: [
        #"""
        CREATE TABLE gantry.webhooks (
            name       text        PRIMARY KEY,
            url        text        NOT NULL,
            events     text[]      NOT NULL,
            queues     text[],
            secret     text        NOT NULL,
            source     text        NOT NULL CHECK (source IN ('config', 'rpc')),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """#,
        // One row per event per webhook; its id is the delivery id a receiver drops repeats by.
        #"""
        CREATE TABLE gantry.webhook_deliveries (
            id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
            webhook         text        NOT NULL REFERENCES gantry.webhooks ON DELETE CASCADE,
            event           text        NOT NULL,
            body            jsonb       NOT NULL,
            attempts        integer     NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            locked_until    timestamptz,
            last_status     integer,
            last_response   text,
            last_error      text,
            delivered_at    timestamptz,
            gave_up_at      timestamptz,
            created_at      timestamptz NOT NULL DEFAULT now()
        )
        """#,
        #"""
        CREATE INDEX webhook_deliveries_due ON gantry.webhook_deliveries (next_attempt_at)
            WHERE delivered_at IS NULL AND gave_up_at IS NULL
        """#,
        "CREATE INDEX webhook_deliveries_webhook ON gantry.webhook_deliveries (webhook, created_at)",
        #"""
        CREATE FUNCTION gantry.emit(kind text, event_queue text, body jsonb) RETURNS void LANGUAGE plpgsql AS $fn$
        DECLARE
            event jsonb := jsonb_build_object(
                'event', kind, 'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) || body
                || CASE WHEN event_queue IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('queue', event_queue) END;
        BEGIN
            INSERT INTO gantry.webhook_deliveries (webhook, event, body)
            SELECT w.name, kind, event FROM gantry.webhooks w
            WHERE kind = ANY(w.events) AND (w.queues IS NULL OR event_queue = ANY(w.queues));
            PERFORM pg_notify('gantry_watch', event::text);
        END
        $fn$
        """#,
        // What an event says of a job: small, so a NOTIFY (8000 bytes at most) always carries it.
        #"""
        CREATE FUNCTION gantry.event_job(id bigint, type text, attempt integer, max_attempts integer, errors jsonb,
                                         state text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $fn$
            SELECT jsonb_build_object('job', jsonb_strip_nulls(jsonb_build_object(
                'id', id::text, 'type', left(type, 255), 'attempt', attempt, 'max_attempts', max_attempts, 'state', state,
                'error', CASE WHEN jsonb_array_length(errors) > 0 THEN jsonb_strip_nulls(jsonb_build_object(
                    'message', left(errors -> -1 ->> 'message', 1000), 'kind', left(errors -> -1 ->> 'kind', 255),
                    'reason', errors -> -1 ->> 'reason')) END)))
        $fn$
        """#,
        // A failed attempt that will be tried again (every path that fails an attempt appends to `errors`).
        #"""
        CREATE FUNCTION gantry.job_failed_event() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            PERFORM gantry.emit('job.failed', NEW.queue,
                                gantry.event_job(NEW.id, NEW.type, NEW.attempt, NEW.max_attempts, NEW.errors, NEW.state));
            RETURN NULL;
        END
        $fn$
        """#,
        #"""
        CREATE TRIGGER job_failed_event AFTER UPDATE OF errors ON gantry.jobs
            FOR EACH ROW WHEN (jsonb_array_length(NEW.errors) > jsonb_array_length(OLD.errors))
            EXECUTE FUNCTION gantry.job_failed_event()
        """#,
        #"""
        CREATE FUNCTION gantry.job_dead_event() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            PERFORM gantry.emit('job.dead', NEW.queue,
                                gantry.event_job(NEW.id, NEW.type, NEW.attempt, NEW.max_attempts, NEW.errors, NEW.state));
            RETURN NULL;
        END
        $fn$
        """#,
        #"""
        CREATE TRIGGER job_dead_event AFTER INSERT ON gantry.finished_jobs
            FOR EACH ROW WHEN (NEW.state = 'dead') EXECUTE FUNCTION gantry.job_dead_event()
        """#,
        // A job brought back from the finished ones (`jobs.retry`, the dashboard's Retry): it has run before.
        #"""
        CREATE FUNCTION gantry.job_retried_event() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            PERFORM gantry.emit('job.retried', NEW.queue,
                                gantry.event_job(NEW.id, NEW.type, NEW.attempt, NEW.max_attempts, '[]'::jsonb, NEW.state));
            RETURN NULL;
        END
        $fn$
        """#,
        #"""
        CREATE TRIGGER job_retried_event AFTER INSERT ON gantry.jobs
            FOR EACH ROW WHEN (NEW.attempt > 0) EXECUTE FUNCTION gantry.job_retried_event()
        """#,
        #"""
        CREATE FUNCTION gantry.operation_failed_event() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            PERFORM gantry.emit('operation.failed', NEW.queue, jsonb_build_object('operation', jsonb_strip_nulls(jsonb_build_object(
                'id', NEW.id::text, 'name', NEW.name, 'package', NEW.package,
                'error', NEW.error - 'backtrace'))));
            RETURN NULL;
        END
        $fn$
        """#,
        #"""
        CREATE TRIGGER operation_failed_event AFTER UPDATE OF state ON gantry.operations
            FOR EACH ROW WHEN (NEW.state = 'failed' AND OLD.state IS DISTINCT FROM 'failed')
            EXECUTE FUNCTION gantry.operation_failed_event()
        """#,
    ])
}
