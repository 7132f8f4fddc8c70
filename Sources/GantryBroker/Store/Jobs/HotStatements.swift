import Foundation
import GantryProtocol
import PostgresNIO

// The statements behind enqueue, ack and jobs.get, prepared once per connection: they run on nearly every
// request, and a prepared statement spares PostgreSQL parsing them (each run is still planned afresh: see
// `withGantrySessionSettings`). Args and results go in and out as `json`, not `jsonb`, so they keep the spelling
// the client sent. The claim is in JobStore+Claim.swift.

/// Inserts new jobs (`[NewJobRecord]` as JSON) and notifies every broker of the queues that gained available
/// jobs, in one statement; rows come back in input order, minus those whose unique key was taken.
struct InsertJobsStatement: PostgresPreparedStatement {
    typealias Row = (Int64, String, String?, Int64)

    var jobs: String
    var brokerID: UUID

    static let name = "gantry_insert_jobs_v2"
    static let sql = """
        WITH input AS (
            SELECT r.*, e.position,
                   coalesce(r.run_at, now() + r.delay_ms * interval '1 millisecond') AS due_at
            FROM json_array_elements($1::json) WITH ORDINALITY AS e(job, position)
            CROSS JOIN LATERAL json_to_record(e.job) AS r(
                type text, args json, queue text, priority smallint, run_at timestamptz, delay_ms bigint,
                max_attempts integer, timeout_ms bigint, expires_at timestamptz, queue_timeout_ms bigint,
                unique_key text, unique_for_ms bigint, tags text[], meta json)
        ), inserted AS (
            INSERT INTO gantry.jobs (queue, type, args, state, priority, run_at, max_attempts, timeout_ms,
                                     expires_at, unique_key, unique_for_ms, tags, meta)
            SELECT queue, type, args, CASE WHEN due_at > now() THEN 'scheduled' ELSE 'available' END, priority,
                   due_at, max_attempts, timeout_ms,
                   coalesce(expires_at, now() + queue_timeout_ms * interval '1 millisecond'), unique_key,
                   unique_for_ms, tags, meta
            FROM input
            WHERE unique_key IS NULL
               OR NOT EXISTS (SELECT 1 FROM gantry.unique_holds h
                              WHERE h.unique_key = input.unique_key AND h.held_until > now())
            ORDER BY position
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
            RETURNING id, queue, state, unique_key
        ), notified AS (
            SELECT pg_notify($2::text, $3::text || ' ' || queue || ' ' || count(*))
            FROM inserted WHERE state = 'available' GROUP BY queue
        )
        SELECT id, state, unique_key, (SELECT count(*) FROM notified) FROM inserted
        """

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(jobs)
        bindings.append(JobStore.notifyChannel)
        bindings.append(brokerID.wireString)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// Completes the jobs (`[Completion]` as JSON) whose sessions still hold them: moves each to `finished_jobs`,
/// writes its unique hold, counts it as processed. Answers the ids it moved and whether a cancel was asked.
/// Plain acks run it on the pipelines; a step's ack inside the transaction that moves its operation on.
struct CompleteJobsStatement: PostgresPreparedStatement {
    typealias Row = (Int64, Bool)

    var completions: String

    static let name = "gantry_complete_jobs_v3"
    static let pipelined = PipelinedStatement(name: name, sql: sql)
    static let sql = """
        WITH input AS (
            SELECT * FROM json_to_recordset($1::json) AS i(id bigint, session_id uuid, result json)
        ), done AS (
            DELETE FROM gantry.jobs j USING input i
            WHERE j.id = i.id AND j.state = 'reserved' AND j.session_id = i.session_id
            RETURNING j.*, i.result AS given_result
        ), moved AS (
            INSERT INTO gantry.finished_jobs (\(JobStore.movedColumns), errors, state, result)
            SELECT \(JobStore.movedColumns), errors, 'completed', given_result FROM done
            -- Steps move their operations on, each under its operation's row lock: taken in one order by every
            -- batch, two batches finishing steps of the same operations never wait on each other in a cycle.
            ORDER BY operation_id NULLS FIRST, id
            RETURNING id, queue, cancel_requested_at
        ), held AS (
            INSERT INTO gantry.unique_holds (unique_key, job_id, held_until)
            SELECT unique_key, id, now() + unique_for_ms * interval '1 millisecond' FROM done
            WHERE unique_key IS NOT NULL AND unique_for_ms IS NOT NULL
            ON CONFLICT (unique_key) DO UPDATE SET job_id = excluded.job_id, held_until = excluded.held_until
        ), counted AS (
            INSERT INTO gantry.queue_counters AS c (queue, counter, slot, value)
            SELECT queue, 'processed', pg_backend_pid() % 64, count(*) FROM moved GROUP BY queue ORDER BY queue
            ON CONFLICT (queue, counter, slot) DO UPDATE SET value = c.value + excluded.value
        )
        SELECT id, cancel_requested_at IS NOT NULL FROM moved
        """

    var pipelineParameters: [String?] { [completions] }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(completions)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// One job by id, waiting, running or finished.
struct JobByIDStatement {
    var id: Int64

    static let pipelined = PipelinedStatement(name: "gantry_job_by_id_v2", sql: sql)
    static let sql = """
        SELECT \(JobStore.liveJobColumns) FROM gantry.jobs WHERE id = $1::bigint
        UNION ALL
        SELECT \(JobStore.finishedJobColumns) FROM gantry.finished_jobs WHERE id = $1::bigint
        LIMIT 1
        """

    var pipelineParameters: [String?] { [String(id)] }
}

// The insert and the claim run on the libpq pipelines (PostgresPipelines), which take parameters as text and
// answer rows in binary, and on PostgresNIO inside transactions (unique keys, cron, limited queues).
extension InsertJobsStatement {
    static let pipelined = PipelinedStatement(name: name, sql: sql)
    var pipelineParameters: [String?] { [jobs, JobStore.notifyChannel, brokerID.wireString] }
}

/// Array literals in PostgreSQL's text form, for parameters sent as text.
enum PostgresArrayLiteral {
    static func text(_ elements: [String]) -> String {
        "{" + elements.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
            .joined(separator: ",") + "}"
    }

    static func integers(_ elements: [Int]) -> String {
        "{" + elements.map(String.init).joined(separator: ",") + "}"
    }
}
