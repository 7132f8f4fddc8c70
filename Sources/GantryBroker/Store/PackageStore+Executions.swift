import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Executions: reading a package's operations as lists of steps, and saving them for good.
extension PackageStore {
    private static let executionColumns = """
        o.id, o.package, o.state, o.started_by, o.package_config, o.globals, o.error, o.created_at, o.finished_at,
        o.saved_name, o.saved_description, o.saved_at, o.branches::text
        """
    private typealias ExecutionRow = (Int64, String, String, String?, JSONValue?, JSONValue, JSONValue?, Date, Date?, String?, String?, Date?, String)

    /// A package's executions, newest first.
    public func executions(_ params: PackagesExecutions.Params) async throws -> PackagesExecutions.Result {
        let logger = logger
        let beforeID = params.cursor.flatMap(Int64.init)
        return try await storage.withConnection { connection in
            var executions = try await Self.executions(connection.query("""
                SELECT \(unescaped: Self.executionColumns) FROM gantry.operations o
                WHERE o.package = \(params.name) AND (\(beforeID)::bigint IS NULL OR o.id < \(beforeID))
                ORDER BY o.id DESC LIMIT \(params.limit + 1)
                """, logger: logger), on: connection, logger: logger)
            let more = executions.count > params.limit
            if more { executions.removeLast() }
            return PackagesExecutions.Result(executions: executions, nextCursor: more ? executions.last?.id : nil)
        }
    }

    /// Saved executions, of one package or all, newest saved first.
    public func saved(package: String?) async throws -> [Execution] {
        let logger = logger
        return try await storage.withConnection { connection in
            try await Self.executions(connection.query("""
                SELECT \(unescaped: Self.executionColumns) FROM gantry.operations o
                WHERE o.saved_at IS NOT NULL AND o.package IS NOT NULL AND (\(package)::text IS NULL OR o.package = \(package))
                ORDER BY o.saved_at DESC, o.id DESC
                """, logger: logger), on: connection, logger: logger)
        }
    }

    public enum SaveOutcome: Sendable {
        case saved(Execution)
        case notFound
        /// Another execution of the package is saved under that name.
        case nameTaken(byExecution: String)
    }

    /// Keeps an execution for good under `name` (renaming it if it was saved before).
    public func save(id: Int64, name: String, description: String?) async throws -> SaveOutcome {
        let logger = logger
        return try await storage.withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection -> SaveOutcome in
                let owner = try await connection.query("""
                    SELECT package FROM gantry.operations WHERE id = \(id) AND package IS NOT NULL FOR UPDATE
                    """, logger: logger)
                guard let package = try await owner.decode(String.self).first(where: { _ in true }) else { return .notFound }
                let taken = try await connection.query("""
                    SELECT id FROM gantry.operations WHERE package = \(package) AND saved_name = \(name) AND id <> \(id)
                    """, logger: logger)
                if let other = try await taken.decode(Int64.self).first(where: { _ in true }) { return .nameTaken(byExecution: String(other)) }
                let saved = try await Self.executions(connection.query("""
                    UPDATE gantry.operations o
                    SET saved_name = \(name), saved_description = \(description), saved_at = now(), updated_at = now()
                    WHERE o.id = \(id)
                    RETURNING \(unescaped: Self.executionColumns)
                    """, logger: logger), on: connection, logger: logger)
                guard let execution = saved.first else { return .notFound }
                return .saved(execution)
            }
        }
    }

    /// The executions of `rows`, each with its steps: per place of the plan its latest run since the
    /// execution last started from the top, and the places not reached as `unprocessed`.
    private static func executions(_ rows: PostgresRowSequence, on connection: PostgresConnection, logger: Logger) async throws -> [Execution] {
        var executions: [Execution] = []
        var plans: [String: [OperationEntry]] = [:]
        for try await row in rows.decode(ExecutionRow.self) {
            let saved = row.9.map { SavedExecution(name: $0, description: row.10, savedAt: row.11 ?? row.7) }
            executions.append(Execution(
                id: String(row.0), package: row.1, state: OperationState(rawValue: row.2) ?? .running,
                trigger: row.3.flatMap(ExecutionTrigger.init(rawValue:)) ?? .manual, config: row.4 ?? [:], globals: row.5, error: row.6,
                createdAt: row.7, finishedAt: row.8, saved: saved, steps: []))
            plans[String(row.0)] = try GantryJSON.makeDecoder().decode(OperationPlan.self, from: Data(row.12.utf8)).branches[OperationPlan.mainBranch] ?? []
        }
        guard !executions.isEmpty else { return [] }
        let ids = executions.compactMap { Int64($0.id) }
        let steps = try await connection.query("""
            SELECT s.operation_id, s.entry_seq, s.position, s.member, s.type, s.state, s.job_id, coalesce(j.attempt, s.attempts),
                   coalesce(j.reserved_at, s.started_at), s.finished_at, s.result, s.error, j.state
            FROM gantry.operation_steps s LEFT JOIN gantry.jobs j ON j.id = s.job_id AND s.state = 'waiting'
            WHERE s.operation_id = ANY(\(ids)::bigint[]) AND s.branch = 'main'
            ORDER BY s.id
            """, logger: logger)
        struct Place: Hashable {
            var index: Int
            var member: Int?
        }
        var runs: [String: [(entry: Int32, place: Place, step: ExecutionStep)]] = [:]
        for try await row in steps.decode((Int64, Int32, Int32, Int32?, String, String, Int64, Int32, Date?, Date?, JSONValue?, JSONValue?, String?).self) {
            let state: StepState = switch row.5 {
            case "completed": .completed
            case "failed": .failed
            case "cancelled": .cancelled
            default: row.12 == "reserved" ? .running : .pending
            }
            let place = Place(index: Int(row.2), member: row.3.map(Int.init))
            runs[String(row.0), default: []].append((row.1, place, ExecutionStep(
                index: place.index, member: place.member, type: row.4, state: state, jobID: String(row.6), attempts: Int(row.7),
                startedAt: row.8, finishedAt: row.9, result: row.10, error: row.11)))
        }
        for index in executions.indices {
            let id = executions[index].id
            let all = runs[id] ?? []
            // Runs before the latest start from the top belong to an earlier go.
            let latestStart = all.filter { $0.place.index == 0 }.map(\.entry).max() ?? 0
            var latest: [Place: ExecutionStep] = [:]
            for run in all where run.entry >= latestStart { latest[run.place] = run.step }
            var listed: [ExecutionStep] = []
            for (position, entry) in (plans[id] ?? []).enumerated() {
                let grouped = if case .parallel = entry { true } else { false }
                for (member, step) in entry.steps.enumerated() {
                    let place = Place(index: position, member: grouped ? member : nil)
                    listed.append(latest[place] ?? ExecutionStep(index: position, member: place.member, type: step.type, state: .unprocessed))
                }
            }
            executions[index].steps = listed
        }
        return executions
    }
}
