import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Operations (`gantry.operations`, `gantry.operation_steps`). Moving an operation on is the database's work
/// (Migration0013's functions and triggers), done in the transaction that finishes a step's job; this store
/// starts, reads, retries and cancels operations, and carries a step's `set` and `jump_to` into its ack.
public struct OperationStore: Sendable {
    let storage: Storage
    let logger: Logger

    public init(storage: Storage, logger: Logger) {
        self.storage = storage
        self.logger = logger
    }

    /// Starts an operation at the first place of `main`, or answers the one started before with the same name
    /// and key.
    public func start(_ params: OperationsStart.Params, plan: OperationPlan) async throws -> OperationsStart.Result {
        let branches = String(decoding: try GantryJSON.makeEncoder().encode(plan), as: UTF8.self)
        let logger = logger
        return try await storage.withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection in
                let rows = try await connection.query("""
                    INSERT INTO gantry.operations (name, key, state, queue, globals, initial_globals, branches)
                    VALUES (\(params.name), \(params.key), 'running', \(params.queue), \(params.globals)::jsonb,
                            \(params.globals)::jsonb, \(branches)::json)
                    ON CONFLICT (name, key) WHERE key IS NOT NULL DO NOTHING
                    RETURNING id
                    """, logger: logger)
                if let id = try await rows.decode(Int64.self).first(where: { _ in true }) {
                    try await connection.query("SELECT gantry.operation_enter(\(id), 'main', 0, false)", logger: logger)
                    try await connection.query("SELECT gantry.count_operation(\(params.name), 'started')", logger: logger)
                    return OperationsStart.Result(id: String(id), state: .running, created: true)
                }
                let existing = try await connection.query("""
                    SELECT id, state FROM gantry.operations WHERE name = \(params.name) AND key = \(params.key)
                    """, logger: logger)
                for try await (id, state) in existing.decode((Int64, String).self) {
                    return OperationsStart.Result(id: String(id), state: OperationState(rawValue: state) ?? .running, created: false)
                }
                throw JobStore.InsertedRowMissing()
            }
        }
    }

    /// An ack carrying `set` or `jump_to`: checked against the operation's plan, written to the operation, and
    /// the job completed, in one transaction (the trigger then moves the operation on). Nil when the session
    /// does not hold the job; invalid params when the job is no step or the jump leads nowhere.
    public func completeStep(id: Int64, wireID: String, sessionID: UUID, result: JSONValue?, set: JSONValue?,
                             jump: JumpTarget?) async throws -> JobStore.Completed? {
        let logger = logger
        return try await storage.withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection -> JobStore.Completed? in
                let held = try await connection.query("""
                    SELECT operation_id, step_id FROM gantry.jobs
                    WHERE id = \(id) AND state = 'reserved' AND session_id = \(sessionID)
                    FOR UPDATE
                    """, logger: logger)
                guard let (operationID, stepID) = try await held.decode((Int64?, Int64?).self).first(where: { _ in true }) else { return nil }
                guard let operationID, let stepID else {
                    throw RPCErrorObject.invalidParams(
                        field: set != nil ? "set" : "jump_to",
                        "job \(wireID) is not a step of an operation; set and jump_to go only with the ack of a step (a job whose reserve answer has operation)")
                }
                let rows = try await connection.query("""
                    SELECT o.branches::text, o.entry_seq = s.entry_seq
                    FROM gantry.operations o JOIN gantry.operation_steps s ON s.operation_id = o.id
                    WHERE o.id = \(operationID) AND s.id = \(stepID)
                    FOR UPDATE OF o
                    """, logger: logger)
                var pendingJump: String?
                if let (branches, current) = try await rows.decode((String, Bool).self).first(where: { _ in true }) {
                    if let jump {
                        let plan = try GantryJSON.makeDecoder().decode(OperationPlan.self, from: Data(branches.utf8))
                        let target = try plan.target(of: jump, operationID: String(operationID))
                        // A run the operation has moved past no longer steers it.
                        if current {
                            pendingJump = try JSONWriter.string(.object([
                                "branch": .string(target.branch), "position": .int(Int64(target.index)),
                            ]))
                        }
                    }
                    try await connection.query("""
                        UPDATE gantry.operations
                        SET globals = globals || coalesce(\(set)::jsonb, '{}'::jsonb),
                            pending_jump = coalesce(\(pendingJump)::jsonb, pending_jump), updated_at = now()
                        WHERE id = \(operationID)
                        """, logger: logger)
                }
                let completion = JobStore.Completion(id: id, sessionID: sessionID, result: result)
                let payload = String(decoding: try GantryJSON.makeEncoder().encode([completion]), as: UTF8.self)
                var found: JobStore.Completed?
                for try await (_, cancelRequested) in try await connection.execute(CompleteJobsStatement(completions: payload), logger: logger) {
                    found = JobStore.Completed(held: true, cancelRequested: cancelRequested)
                }
                return found
            }
        }
    }

    /// What the steps among claimed jobs carry: their operation, place and the globals as they are now, and for
    /// a package's execution the package and the config it runs with.
    static func stepContexts(_ stepIDs: [Int64], on connection: PostgresConnection, logger: Logger) async throws -> [Int64: (StepContext, PackageContext?)] {
        let rows = try await connection.query("""
            SELECT s.id, o.id, o.name, s.branch, s.type, s.position, o.globals, o.package, o.package_config
            FROM gantry.operation_steps s JOIN gantry.operations o ON o.id = s.operation_id
            WHERE s.id = ANY(\(stepIDs)::bigint[])
            """, logger: logger)
        var contexts: [Int64: (StepContext, PackageContext?)] = [:]
        for try await row in rows.decode((Int64, Int64, String, String, String, Int32, JSONValue, String?, JSONValue?).self) {
            let step = StepContext(id: String(row.1), name: row.2, branch: row.3, step: row.4, index: Int(row.5), globals: row.6)
            contexts[row.0] = (step, row.7.map { PackageContext(name: $0, config: row.8 ?? [:]) })
        }
        return contexts
    }

    private static let columns = """
        o.id, o.name, o.key, o.state, o.queue, o.globals, o.branch, o.position, o.path, o.error, o.created_at, o.updated_at, o.finished_at
        """
    private typealias Row = (Int64, String, String?, String, String, JSONValue, String, Int32, JSONValue, JSONValue?, Date, Date, Date?)

    private static func operation(_ row: Row) -> OperationRecord {
        OperationRecord(id: String(row.0), name: row.1, key: row.2, state: OperationState(rawValue: row.3) ?? .running, queue: row.4,
                  globals: row.5, branch: row.6, index: Int(row.7), path: row.8.arrayValue?.compactMap(\.stringValue) ?? [],
                  error: row.9, createdAt: row.10, updatedAt: row.11, finishedAt: row.12)
    }

    /// The operation with its plan and every run of its steps, then the places of its current branch not reached.
    public func get(id: Int64) async throws -> OperationRecord? {
        let logger = logger
        return try await storage.withConnection { connection -> OperationRecord? in
            let rows = try await connection.query("""
                SELECT \(unescaped: Self.columns), o.branches::text FROM gantry.operations o WHERE o.id = \(id)
                """, logger: logger)
            guard let row = try await rows.decode((Int64, String, String?, String, String, JSONValue, String, Int32, JSONValue, JSONValue?, Date, Date, Date?, String).self)
                .first(where: { _ in true }) else { return nil }
            var operation = Self.operation((row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10, row.11, row.12))
            let plan = try GantryJSON.makeDecoder().decode(OperationPlan.self, from: Data(row.13.utf8))
            operation.branches = plan
            let steps = try await connection.query("""
                SELECT s.branch, s.position, s.member, s.type, s.state, s.job_id, s.retried,
                       coalesce(j.attempt, s.attempts), coalesce(j.reserved_at, s.started_at), s.finished_at,
                       (extract(epoch FROM s.finished_at - s.started_at) * 1000)::bigint, s.error, j.state,
                       (SELECT e.value FROM jsonb_array_elements(j.errors) WITH ORDINALITY AS e(value, n) ORDER BY e.n DESC LIMIT 1)
                FROM gantry.operation_steps s LEFT JOIN gantry.jobs j ON j.id = s.job_id AND s.state = 'waiting'
                WHERE s.operation_id = \(id)
                ORDER BY s.id
                """, logger: logger)
            var runs: [OperationStepRun] = []
            for try await step in steps.decode((String, Int32, Int32?, String, String, Int64, Bool, Int32, Date?, Date?, Int64?, JSONValue?, String?, JSONValue?).self) {
                let state: StepState = switch step.4 {
                case "completed": .completed
                case "failed": .failed
                case "cancelled": .cancelled
                default: step.12 == "reserved" ? .running : .pending
                }
                runs.append(OperationStepRun(
                    branch: step.0, index: Int(step.1), member: step.2.map(Int.init), type: step.3, state: state, jobID: String(step.5),
                    attempts: Int(step.7), startedAt: step.8, finishedAt: step.9, durationMs: step.10, error: step.11 ?? step.13,
                    retried: step.6 ? true : nil))
            }
            if operation.state != .completed, let entries = plan.branches[operation.branch] {
                let reached = runs.contains { $0.branch == operation.branch && $0.index == operation.index }
                for index in (reached ? operation.index + 1 : operation.index)..<entries.count {
                    let grouped = if case .parallel = entries[index] { true } else { false }
                    for (member, step) in entries[index].steps.enumerated() {
                        runs.append(OperationStepRun(branch: operation.branch, index: index, member: grouped ? member : nil, type: step.type, state: .unprocessed))
                    }
                }
            }
            operation.steps = runs
            return operation
        }
    }

    /// Operations newest first; `globals` is JSON containment, answered through the GIN index.
    public func list(_ params: OperationsList.Params) async throws -> OperationsList.Result {
        let logger = logger
        let query = try Self.listQuery(params)
        return try await storage.withConnection { connection in
            let rows = try await connection.query(query, logger: logger)
            var operations: [OperationRecord] = []
            for try await row in rows.decode(Row.self) { operations.append(Self.operation(row)) }
            let more = operations.count > params.limit
            if more { operations.removeLast() }
            return OperationsList.Result(operations: operations, nextCursor: more ? operations.last?.id : nil)
        }
    }

    /// One page of `operations.list` (one row more than the limit: whether there is a next page).
    static func listQuery(_ params: OperationsList.Params) throws -> PostgresQuery {
        let beforeID = params.cursor.flatMap(Int64.init)
        return try """
            SELECT \(unescaped: Self.columns) FROM gantry.operations o
            WHERE (\(params.name)::text IS NULL OR o.name = \(params.name))
              AND (\(params.state?.rawValue)::text IS NULL OR o.state = \(params.state?.rawValue))
              AND (\(params.globals)::jsonb IS NULL OR o.globals @> \(params.globals)::jsonb)
              AND (\(beforeID)::bigint IS NULL OR o.id < \(beforeID))
            ORDER BY o.id DESC LIMIT \(params.limit + 1)
            """
    }

    /// The operation's state, or nil when there is none.
    public func state(id: Int64) async throws -> OperationState? {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("SELECT state FROM gantry.operations WHERE id = \(id)", logger: logger)
            return try await rows.decode(String.self).first(where: { _ in true }).flatMap(OperationState.init(rawValue:))
        }
    }

    public enum Refusal: Error {
        case notFound
        case wrongState(OperationState)
    }

    /// Resumes (or restarts) a failed, cancelled or, from the start, completed operation; answers the step jobs
    /// it enqueued and the state it is in then (completed, when every step of its place had already completed
    /// and that place was its last).
    public func retry(id: Int64, from: OperationsRetry.From) async throws -> Result<(jobIDs: [Int64], state: OperationState), Refusal> {
        let logger = logger
        let allowed: Set<String> = from == .start ? ["failed", "cancelled", "completed"] : ["failed", "cancelled"]
        return try await storage.withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection -> Result<(jobIDs: [Int64], state: OperationState), Refusal> in
                let rows = try await connection.query("SELECT state FROM gantry.operations WHERE id = \(id) FOR UPDATE", logger: logger)
                guard let state = try await rows.decode(String.self).first(where: { _ in true }) else { return .failure(.notFound) }
                guard allowed.contains(state) else { return .failure(.wrongState(OperationState(rawValue: state) ?? .running)) }
                // From the start, what is left of the earlier run must not go on beside the new one: its waiting
                // steps are cancelled, its running ones asked to stop (their outcomes then change nothing).
                if from == .start { _ = try await Self.cancelWaitingSteps(of: id, on: connection, logger: logger) }
                var jobIDs: [Int64] = []
                let spawned = try await connection.query("SELECT gantry.operation_retry(\(id), \(from == .start))", logger: logger)
                for try await jobID in spawned.decode(Int64.self) { jobIDs.append(jobID) }
                if from == .start { _ = try await Self.stopRunningSteps(of: id, on: connection, logger: logger) }
                let after = try await connection.query("SELECT state FROM gantry.operations WHERE id = \(id)", logger: logger)
                let now = try await after.decode(String.self).first(where: { _ in true }).flatMap(OperationState.init(rawValue:)) ?? .running
                return .success((jobIDs, now))
            }
        }
    }

    /// Cancels a running or failed operation: its waiting step jobs end `cancelled`, its running ones are
    /// flagged for their workers. Answers how many of each.
    public func cancel(id: Int64) async throws -> Result<(cancelled: Int, stopping: Int), Refusal> {
        let logger = logger
        return try await storage.withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection -> Result<(cancelled: Int, stopping: Int), Refusal> in
                let rows = try await connection.query("""
                    SELECT state, name FROM gantry.operations WHERE id = \(id) FOR UPDATE
                    """, logger: logger)
                guard let (state, name) = try await rows.decode((String, String).self).first(where: { _ in true }) else { return .failure(.notFound) }
                guard state == "running" || state == "failed" else { return .failure(.wrongState(OperationState(rawValue: state) ?? .completed)) }
                try await connection.query("""
                    UPDATE gantry.operations SET state = 'cancelled', pending_jump = NULL, finished_at = now(), updated_at = now()
                    WHERE id = \(id)
                    """, logger: logger)
                if state == "running" { try await connection.query("SELECT gantry.count_operation(\(name), 'cancelled')", logger: logger) }
                let cancelled = try await Self.cancelWaitingSteps(of: id, on: connection, logger: logger)
                let stopping = try await Self.stopRunningSteps(of: id, on: connection, logger: logger)
                return .success((cancelled, stopping))
            }
        }
    }

    /// Moves the operation's waiting step jobs to `cancelled` (the trigger records their runs); how many.
    private static func cancelWaitingSteps(of id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.query("""
            WITH gone AS (
                DELETE FROM gantry.jobs WHERE operation_id = \(id) AND state IN ('scheduled', 'available') RETURNING *
            ), moved AS (
                INSERT INTO gantry.finished_jobs (\(unescaped: JobStore.movedColumns), errors, state)
                SELECT \(unescaped: JobStore.movedColumns), errors, 'cancelled' FROM gone
                RETURNING id
            )
            SELECT count(*) FROM moved
            """, logger: logger)
        return Int(try await rows.decode(Int64.self).first(where: { _ in true }) ?? 0)
    }

    /// Asks the workers holding the operation's step jobs to stop (as `jobs.cancel` does); how many.
    private static func stopRunningSteps(of id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.query("""
            WITH flagged AS (
                UPDATE gantry.jobs SET cancel_requested_at = coalesce(cancel_requested_at, now())
                WHERE operation_id = \(id) AND state = 'reserved'
                RETURNING id
            )
            SELECT count(*) FROM flagged
            """, logger: logger)
        return Int(try await rows.decode(Int64.self).first(where: { _ in true }) ?? 0)
    }

    /// Deletes up to `batch` operations in `states` that finished more than `olderThanMs` ago (their step
    /// records with them), never a saved execution; the step jobs age out of `finished_jobs` on their own.
    public func pruneFinished(states: [OperationState], olderThanMs: Int64, batch: Int = 1000, now: Date? = nil) async throws -> Int {
        let logger = logger
        let names = states.map(\.rawValue)
        return try await storage.withConnection { connection -> Int in
            let rows = try await connection.query("""
                WITH doomed AS (
                    SELECT id FROM gantry.operations
                    WHERE finished_at < coalesce(\(now)::timestamptz, now()) - \(olderThanMs) * interval '1 millisecond'
                      AND state = ANY(\(names)::text[]) AND saved_at IS NULL
                    ORDER BY finished_at LIMIT \(batch)
                    FOR UPDATE SKIP LOCKED
                ), deleted AS (
                    DELETE FROM gantry.operations o USING doomed WHERE o.id = doomed.id RETURNING 1
                )
                SELECT count(*) FROM deleted
                """, logger: logger)
            return Int(try await rows.decode(Int64.self).first(where: { _ in true }) ?? 0)
        }
    }

    /// Operations started, completed, failed and cancelled, by name, since the database was made.
    public func counters() async throws -> [(name: String, counter: String, value: Int64)] {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                SELECT name, counter, sum(value)::bigint FROM gantry.operation_counters GROUP BY name, counter ORDER BY name, counter
                """, logger: logger)
            var counters: [(name: String, counter: String, value: Int64)] = []
            for try await (name, counter, value) in rows.decode((String, String, Int64).self) { counters.append((name, counter, value)) }
            return counters
        }
    }
}

extension OperationStore {
    /// The operation a waiting or running job is a step of, if it is one.
    public func operationOfLiveJob(id: Int64) async throws -> Int64? {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("SELECT operation_id FROM gantry.jobs WHERE id = \(id) AND step_id IS NOT NULL", logger: logger)
            return try await rows.decode(Int64?.self).first(where: { _ in true }) ?? nil
        }
    }
}
