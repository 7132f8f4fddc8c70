import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Every query Gantry runs against its jobs, named after what it does, in one file per step of a job's life:
/// Enqueue, Claim, Finish (ack, nack, extend), PutBack (release, reap), Timers (promote, expire, prune),
/// OperatorActions and Reads. Bind parameters only: values never become SQL text. Each write is one statement
/// (or one short transaction), so row locks are held only briefly.
public struct JobStore: Sendable {
    /// The channel every broker LISTENs on; payload `<broker id> <queue> <count>`.
    public static let notifyChannel = "gantry_jobs"

    let storage: Storage
    let logger: Logger
    let brokerID: UUID

    public init(storage: Storage, brokerID: UUID, logger: Logger) {
        self.storage = storage
        self.brokerID = brokerID
        self.logger = logger
    }

    /// Runs `body` in an explicit transaction and returns once its COMMIT has completed. A lone statement would
    /// not do for a write a client is told about: PostgresNIO reports a statement done at its CommandComplete,
    /// which PostgreSQL sends before the Sync that commits the statement's implicit transaction, so a server
    /// stopped in between rolled back jobs whose enqueue had already been answered (seen in the test that stops
    /// PostgreSQL under load: 2 acknowledged enqueues lost). COMMIT answers only after the commit.
    static func committed<Value: Sendable>(
        on connection: PostgresConnection, logger: Logger, _ body: (PostgresConnection) async throws -> sending Value
    ) async throws -> sending Value {
        try await connection.withTransaction(logger: logger, body)
    }

    /// Columns that move unchanged from `jobs` to `finished_jobs`.
    static let movedColumns =
        "id, queue, type, args, priority, run_at, attempt, max_attempts, timeout_ms, expires_at, unique_key, tags, meta, enqueued_at, reserved_at, cancel_requested_at, operation_id, step_id"

    /// Tells every broker (this one too) that jobs became available.
    public func notifyAvailable(_ counts: [String: Int]) async throws {
        guard !counts.isEmpty else { return }
        try await storage.withConnection { connection -> Void in
            let queues = Array(counts.keys)
            let numbers = queues.map { Int64(counts[$0]!) }
            try await connection.query("""
                SELECT pg_notify(\(Self.notifyChannel), \(brokerID.wireString) || ' ' || q || ' ' || n)
                FROM unnest(\(queues)::text[], \(numbers)::int8[]) AS t(q, n)
                """, logger: logger)
        }
    }

    /// How many jobs (up to `cap`) are available in each of the queues: the safety net for lost notifications.
    public func availableCounts(queues: [String], cap: Int = 100) async throws -> [String: Int] {
        return try await storage.withConnection { connection -> [String: Int] in
            let rows = try await connection.query("""
                SELECT q, (SELECT count(*) FROM (SELECT 1 FROM gantry.jobs
                           WHERE queue = q AND state = 'available' LIMIT \(cap)) AS capped)
                FROM unnest(\(queues)::text[]) AS q
                """, logger: logger)
            var counts: [String: Int] = [:]
            for try await (queue, count) in rows.decode((String, Int64).self) where count > 0 { counts[queue] = Int(count) }
            return counts
        }
    }
}

