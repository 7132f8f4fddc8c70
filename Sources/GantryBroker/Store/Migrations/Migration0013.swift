extension Migration {
    /// Operations: named sets of steps, each step a job, with globals the steps share. Everything that moves an
    /// operation on happens in PostgreSQL, in the transaction that finishes a step's job: whichever way the job
    /// ends (an ack, a nack, a lease that ran out, an operator's cancel, a queue timeout) a trigger on
    /// `finished_jobs` records the step and, when its place in the branch is done, enqueues the next one. So a
    /// step's completion, its globals and the next step's job commit together, and a crash between steps loses
    /// nothing and runs nothing twice.
    static let v0013 = Migration(version: 13, name: "operations", statements: [
        // `branches` is `json`, kept as sent: branch order is the order people wrote them in. `globals` is
        // `jsonb`: steps merge into it (`||`) and lists search it by containment.
        #"""
        CREATE TABLE gantry.operations (
            id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name            text        NOT NULL,
            key             text,
            state           text        NOT NULL CHECK (state IN ('running', 'completed', 'failed', 'cancelled')),
            queue           text        NOT NULL,
            globals         jsonb       NOT NULL,
            initial_globals jsonb       NOT NULL,
            branches        json        NOT NULL,
            branch          text        NOT NULL DEFAULT 'main',
            position        integer     NOT NULL DEFAULT 0,
            -- Counts the places entered; the steps of the current place carry the same number.
            entry_seq       integer     NOT NULL DEFAULT 0,
            path            jsonb       NOT NULL DEFAULT '[]',
            -- Where a step of the current place said to go next (`jump_to`), taken when the place is done.
            pending_jump    jsonb,
            error           jsonb,
            created_at      timestamptz NOT NULL DEFAULT now(),
            updated_at      timestamptz NOT NULL DEFAULT now(),
            finished_at     timestamptz
        )
        """#,
        "CREATE UNIQUE INDEX operations_key ON gantry.operations (name, key) WHERE key IS NOT NULL",
        "CREATE INDEX operations_name ON gantry.operations (name, id)",
        "CREATE INDEX operations_unfinished ON gantry.operations (state, id) WHERE state <> 'completed'",
        "CREATE INDEX operations_globals ON gantry.operations USING gin (globals jsonb_path_ops)",
        "CREATE INDEX operations_finished ON gantry.operations (finished_at) WHERE finished_at IS NOT NULL",
        // One row per run of a step. `waiting` covers pending and running (the job says which); a failed run
        // that was run again stays, `retried`, as history.
        #"""
        CREATE TABLE gantry.operation_steps (
            id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            operation_id bigint      NOT NULL REFERENCES gantry.operations ON DELETE CASCADE,
            entry_seq    integer     NOT NULL,
            branch       text        NOT NULL,
            position     integer     NOT NULL,
            member       integer,
            type         text        NOT NULL,
            job_id       bigint      NOT NULL,
            state        text        NOT NULL CHECK (state IN ('waiting', 'completed', 'failed', 'cancelled')),
            retried      boolean     NOT NULL DEFAULT false,
            attempts     integer     NOT NULL DEFAULT 0,
            error        jsonb,
            started_at   timestamptz,
            finished_at  timestamptz,
            created_at   timestamptz NOT NULL DEFAULT now()
        )
        """#,
        "CREATE INDEX operation_steps_operation ON gantry.operation_steps (operation_id, entry_seq)",
        // Started, completed, failed and cancelled operations per name, in slots like `queue_counters`.
        #"""
        CREATE TABLE gantry.operation_counters (
            name    text     NOT NULL,
            counter text     NOT NULL,
            slot    smallint NOT NULL,
            value   bigint   NOT NULL,
            PRIMARY KEY (name, counter, slot)
        )
        """#,
        #"""
        CREATE FUNCTION gantry.count_operation(op_name text, counter text) RETURNS void LANGUAGE sql AS $fn$
            INSERT INTO gantry.operation_counters AS c (name, counter, slot, value)
            VALUES (op_name, counter, pg_backend_pid() % 64, 1)
            ON CONFLICT (name, counter, slot) DO UPDATE SET value = c.value + 1
        $fn$
        """#,
        "ALTER TABLE gantry.jobs ADD COLUMN operation_id bigint, ADD COLUMN step_id bigint",
        "ALTER TABLE gantry.finished_jobs ADD COLUMN operation_id bigint, ADD COLUMN step_id bigint",
        "CREATE INDEX jobs_operation ON gantry.jobs (operation_id) WHERE operation_id IS NOT NULL",
        // One step's job: its id is taken first so the step row and the job name each other.
        #"""
        CREATE FUNCTION gantry.operation_spawn(op gantry.operations, step json, at_branch text, at_position integer,
                                               at_member integer) RETURNS bigint LANGUAGE plpgsql AS $fn$
        DECLARE
            new_job bigint := nextval(pg_get_serial_sequence('gantry.jobs', 'id'));
            new_step bigint;
        BEGIN
            INSERT INTO gantry.operation_steps (operation_id, entry_seq, branch, position, member, type, job_id, state)
            VALUES (op.id, op.entry_seq, at_branch, at_position, at_member, step ->> 'type', new_job, 'waiting')
            RETURNING id INTO new_step;
            INSERT INTO gantry.jobs (id, queue, type, args, state, priority, run_at, max_attempts, timeout_ms, operation_id, step_id)
            OVERRIDING SYSTEM VALUE
            VALUES (new_job, step ->> 'queue', step ->> 'type', coalesce(step -> 'args', '{}'::json), 'available',
                    (step ->> 'priority')::smallint, now(), (step ->> 'max_attempts')::integer,
                    (step ->> 'timeout_ms')::bigint, op.id, new_step);
            RETURN new_job;
        END
        $fn$
        """#,
        // Tells every broker that steps of `op_id` became available; delivered on commit, never before.
        #"""
        CREATE FUNCTION gantry.operation_notify(op_id bigint) RETURNS void LANGUAGE sql AS $fn$
            SELECT pg_notify('gantry_jobs', 'sql ' || queue || ' ' || count(*))
            FROM gantry.jobs WHERE operation_id = op_id AND state = 'available' GROUP BY queue
        $fn$
        """#,
        // Enters a place of a branch: its step, or every step of its parallel group, becomes a job.
        #"""
        CREATE FUNCTION gantry.operation_enter(op_id bigint, to_branch text, to_position integer, jumped boolean)
        RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
        DECLARE
            op gantry.operations;
            entry json;
            grouped boolean;
            member json;
            member_no integer;
        BEGIN
            UPDATE gantry.operations
            SET branch = to_branch, position = to_position, entry_seq = entry_seq + 1, pending_jump = NULL,
                state = 'running', error = NULL, finished_at = NULL, updated_at = now(),
                path = CASE WHEN jumped OR path = '[]'::jsonb OR branch <> to_branch THEN path || to_jsonb(to_branch) ELSE path END
            WHERE id = op_id
            RETURNING * INTO op;
            entry := op.branches -> to_branch -> to_position;
            grouped := (entry -> 'parallel') IS NOT NULL;
            FOR member, member_no IN
                SELECT value, ordinality - 1
                FROM json_array_elements(CASE WHEN grouped THEN entry -> 'parallel' ELSE json_build_array(entry) END) WITH ORDINALITY
            LOOP
                RETURN NEXT gantry.operation_spawn(op, member, to_branch, to_position, CASE WHEN grouped THEN member_no END);
            END LOOP;
            PERFORM gantry.operation_notify(op_id);
        END
        $fn$
        """#,
        // The current place is done: on to where a step jumped, or to the branch's next place; past the end of
        // the branch the operation is completed.
        #"""
        CREATE FUNCTION gantry.operation_advance(op_id bigint) RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
        DECLARE
            op gantry.operations;
            to_branch text;
            to_position integer;
        BEGIN
            SELECT * INTO op FROM gantry.operations WHERE id = op_id;
            IF op.pending_jump IS NOT NULL THEN
                to_branch := op.pending_jump ->> 'branch';
                to_position := (op.pending_jump ->> 'position')::integer;
            ELSE
                to_branch := op.branch;
                to_position := op.position + 1;
            END IF;
            IF to_position >= json_array_length(op.branches -> to_branch) THEN
                UPDATE gantry.operations
                SET state = 'completed', pending_jump = NULL, error = NULL, finished_at = now(), updated_at = now()
                WHERE id = op_id;
                PERFORM gantry.count_operation(op.name, 'completed');
                RETURN;
            END IF;
            RETURN QUERY SELECT gantry.operation_enter(op_id, to_branch, to_position, op.pending_jump IS NOT NULL);
        END
        $fn$
        """#,
        // A step's job finished, however it ended: record the run, then fail the operation or move it on.
        #"""
        CREATE FUNCTION gantry.operation_step_finished() RETURNS trigger LANGUAGE plpgsql AS $fn$
        DECLARE
            op gantry.operations;
            run gantry.operation_steps;
            outcome text := CASE NEW.state WHEN 'completed' THEN 'completed' WHEN 'cancelled' THEN 'cancelled' ELSE 'failed' END;
        BEGIN
            SELECT * INTO op FROM gantry.operations WHERE id = NEW.operation_id FOR UPDATE;
            IF NOT FOUND THEN RETURN NULL; END IF;
            UPDATE gantry.operation_steps
            SET state = outcome, attempts = NEW.attempt, started_at = NEW.reserved_at, finished_at = NEW.finished_at,
                error = CASE WHEN jsonb_array_length(NEW.errors) > 0 THEN NEW.errors -> -1 END
            WHERE id = NEW.step_id
            RETURNING * INTO run;
            -- A run the operation has moved past (it was started again from the start meanwhile) changes nothing.
            IF NOT FOUND OR run.entry_seq <> op.entry_seq THEN RETURN NULL; END IF;
            IF outcome <> 'completed' THEN
                IF op.state = 'running' THEN
                    UPDATE gantry.operations
                    SET state = 'failed', finished_at = now(), updated_at = now(),
                        error = jsonb_strip_nulls(jsonb_build_object(
                            'branch', run.branch, 'index', run.position, 'type', run.type, 'job_id', NEW.id::text,
                            'job_state', NEW.state,
                            'message', coalesce(run.error ->> 'message', CASE NEW.state
                                WHEN 'cancelled' THEN 'The step''s job was cancelled.'
                                WHEN 'expired' THEN 'The step''s job waited past its queue timeout.' END),
                            'kind', run.error -> 'kind', 'backtrace', run.error -> 'backtrace'))
                    WHERE id = op.id;
                    PERFORM gantry.count_operation(op.name, 'failed');
                END IF;
                RETURN NULL;
            END IF;
            IF op.state NOT IN ('running', 'failed') THEN RETURN NULL; END IF;
            IF EXISTS (SELECT 1 FROM gantry.operation_steps s
                       WHERE s.operation_id = op.id AND s.entry_seq = op.entry_seq AND s.state <> 'completed' AND NOT s.retried) THEN
                RETURN NULL;
            END IF;
            PERFORM gantry.operation_advance(op.id);
            RETURN NULL;
        END
        $fn$
        """#,
        #"""
        CREATE TRIGGER operation_step_finished AFTER INSERT ON gantry.finished_jobs
            FOR EACH ROW WHEN (NEW.step_id IS NOT NULL) EXECUTE FUNCTION gantry.operation_step_finished()
        """#,
        // A finished step's job brought back (`jobs.retry`): the run waits again, and a failed operation whose
        // current place it is runs again.
        #"""
        CREATE FUNCTION gantry.operation_step_revived() RETURNS trigger LANGUAGE plpgsql AS $fn$
        DECLARE
            run gantry.operation_steps;
        BEGIN
            UPDATE gantry.operation_steps SET state = 'waiting', finished_at = NULL, error = NULL
            WHERE id = NEW.step_id AND state <> 'waiting'
            RETURNING * INTO run;
            IF FOUND THEN
                UPDATE gantry.operations SET state = 'running', error = NULL, finished_at = NULL, updated_at = now()
                WHERE id = run.operation_id AND state = 'failed' AND entry_seq = run.entry_seq;
            END IF;
            RETURN NULL;
        END
        $fn$
        """#,
        #"""
        CREATE TRIGGER operation_step_revived AFTER INSERT ON gantry.jobs
            FOR EACH ROW WHEN (NEW.step_id IS NOT NULL) EXECUTE FUNCTION gantry.operation_step_revived()
        """#,
        // `operations.retry`: from the start (the globals it started with, the first place of main), or at the
        // current place: its runs that did not complete run again; the completed ones are not touched.
        #"""
        CREATE FUNCTION gantry.operation_retry(op_id bigint, from_start boolean) RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
        DECLARE
            op gantry.operations;
            run gantry.operation_steps;
            entry json;
        BEGIN
            SELECT * INTO op FROM gantry.operations WHERE id = op_id FOR UPDATE;
            -- A worker told to stop before the retry may go on now.
            UPDATE gantry.jobs SET cancel_requested_at = NULL WHERE operation_id = op_id AND state = 'reserved';
            IF from_start THEN
                UPDATE gantry.operations SET globals = initial_globals, path = '[]' WHERE id = op_id;
                RETURN QUERY SELECT gantry.operation_enter(op_id, 'main', 0, false);
                RETURN;
            END IF;
            UPDATE gantry.operations
            SET state = 'running', error = NULL, finished_at = NULL, updated_at = now()
            WHERE id = op_id
            RETURNING * INTO op;
            entry := op.branches -> op.branch -> op.position;
            FOR run IN
                UPDATE gantry.operation_steps SET retried = true
                WHERE operation_id = op_id AND entry_seq = op.entry_seq AND state IN ('failed', 'cancelled') AND NOT retried
                RETURNING *
            LOOP
                RETURN NEXT gantry.operation_spawn(
                    op, CASE WHEN run.member IS NULL THEN entry ELSE entry -> 'parallel' -> run.member END,
                    run.branch, run.position, run.member);
            END LOOP;
            IF NOT EXISTS (SELECT 1 FROM gantry.operation_steps s
                           WHERE s.operation_id = op_id AND s.entry_seq = op.entry_seq AND s.state <> 'completed' AND NOT s.retried) THEN
                -- Every run of the place had completed (it was cancelled as its last step finished): move on.
                RETURN QUERY SELECT gantry.operation_advance(op_id);
                RETURN;
            END IF;
            PERFORM gantry.operation_notify(op_id);
        END
        $fn$
        """#,
    ])
}
