import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Finish: an attempt ends with an ack (complete), a nack (fail: retry or dead), or goes on (extend).
extension JobStore {
    /// One ack: the job, the session that says it holds it, and the result to keep.
    public struct Completion: Sendable, Encodable {
        var id: Int64
        var session_id: UUID
        var result: JSONValue?

        public init(id: Int64, sessionID: UUID, result: JSONValue?) {
            self.id = id
            self.session_id = sessionID
            self.result = result
        }
    }

    /// What an ack found: whether the session held the job (it is now completed), and whether an operator had
    /// asked to cancel it meanwhile (it still ran to the end, so it counts as completed).
    public struct Completed: Sendable, Equatable {
        public var held: Bool
        public var cancelRequested: Bool
    }

    /// Marks jobs completed whose lease their session holds, in one statement (acks from many connections
    /// share a commit); answers in the order given, once the statement has committed.
    public func completeJobs(_ completions: [Completion]) async throws -> [Completed] {
        let payload = String(decoding: try JSONObjectWriter.array(completions), as: UTF8.self)
        let rows = try await storage.pipelines.execute(CompleteJobsStatement.pipelined, CompleteJobsStatement(completions: payload).pipelineParameters)
        var found: [Int64: Bool] = [:]
        for row in 0..<rows.count { found[try rows.int64(row, 0)] = try rows.bool(row, 1) }
        return completions.map { Completed(held: found[$0.id] != nil, cancelRequested: found[$0.id] ?? false) }
    }

    /// How a failed attempt ends, decided by the broker's retry rules before the store records it.
    public enum FailureOutcome: Sendable {
        case retry(afterMs: Int64)
        case dead
    }

    /// How a failed attempt was recorded: nil when the session does not hold the job.
    public enum RecordedFailure: Sendable, Equatable {
        case retry(queue: String, nextRunAt: Date)
        /// Dead, or cancelled when an operator asked to cancel it while it ran.
        case finished(JobState)
    }

    /// Records a failed attempt of a job `sessionID` holds: appends the error and either schedules the retry or
    /// moves the job to the dead set (to `cancelled` instead, never retried, when an operator asked to cancel it).
    public func failJob(id: Int64, sessionID: UUID, failure: FailedAttempt, outcome: FailureOutcome) async throws -> RecordedFailure? {
        return try await storage.withConnection { connection -> RecordedFailure? in
            if case .retry(let delayMs) = outcome {
                let rows = try await connection.query("""
                    WITH failed AS (
                        UPDATE gantry.jobs j
                        SET state = CASE WHEN \(delayMs) = 0 THEN 'available' ELSE 'scheduled' END,
                            run_at = now() + \(delayMs) * interval '1 millisecond',
                            errors = errors || jsonb_build_array(\(failure.fields)::jsonb || \(unescaped: FailedAttempt.rowFields(of: "j"))),
                            session_id = NULL, broker_id = NULL, lease_expires_at = NULL
                        WHERE id = \(id) AND state = 'reserved' AND session_id = \(sessionID) AND cancel_requested_at IS NULL
                        RETURNING queue, run_at
                    ), counted AS (
                        \(unescaped: Self.countFailures("failed"))
                    )
                    SELECT queue, run_at FROM failed
                    """, logger: logger)
                for try await (queue, runAt) in rows.decode((String, Date).self) { return .retry(queue: queue, nextRunAt: runAt) }
                // Not held, or its cancellation was asked for: the final move below tells which.
            }
            let rows = try await connection.query("""
                WITH failed AS (
                    DELETE FROM gantry.jobs WHERE id = \(id) AND state = 'reserved' AND session_id = \(sessionID)
                    RETURNING *
                ), moved AS (
                    INSERT INTO gantry.finished_jobs (\(unescaped: Self.movedColumns), errors, state)
                    SELECT \(unescaped: Self.movedColumns),
                           errors || jsonb_build_array(\(failure.fields)::jsonb || \(unescaped: FailedAttempt.rowFields(of: "j"))),
                           CASE WHEN cancel_requested_at IS NULL THEN 'dead' ELSE 'cancelled' END
                    FROM failed j
                    RETURNING queue, state
                ), counted AS (
                    \(unescaped: Self.countFailures("moved"))
                )
                SELECT state FROM moved
                """, logger: logger)
            for try await state in rows.decode(String.self) { return .finished(JobState(rawValue: state) ?? .dead) }
            return nil
        }
    }

    /// The counter upsert for failed attempts of the rows in CTE `source`: each is processed and failed.
    static func countFailures(_ source: String) -> String {
        """
        INSERT INTO gantry.queue_counters AS c (queue, counter, slot, value)
        SELECT f.queue, k.counter, pg_backend_pid() % 64, count(*)
        FROM \(source) f CROSS JOIN (VALUES ('failed'), ('processed')) AS k(counter)
        GROUP BY f.queue, k.counter ORDER BY f.queue, k.counter
        ON CONFLICT (queue, counter, slot) DO UPDATE SET value = c.value + excluded.value
        """
    }

    /// Pushes out the leases `sessionID` holds among `ids`; the others are not touched.
    public func extendLeases(ids: [Int64], sessionID: UUID, leaseMs: Int64?, defaultLeaseMs: Int64) async throws -> [Extend.Lease] {
        return try await storage.withConnection { connection -> [Extend.Lease] in
            let rows = try await connection.query("""
                UPDATE gantry.jobs
                SET lease_expires_at = now() + coalesce(\(leaseMs), timeout_ms, \(defaultLeaseMs)) * interval '1 millisecond'
                WHERE id = ANY(\(ids)::bigint[]) AND state = 'reserved' AND session_id = \(sessionID)
                RETURNING id, lease_expires_at, cancel_requested_at IS NOT NULL
                """, logger: logger)
            var leases: [Extend.Lease] = []
            for try await (id, expiresAt, cancelRequested) in rows.decode((Int64, Date, Bool).self) {
                leases.append(Extend.Lease(id: String(id), leaseExpiresAt: expiresAt, cancelRequested: cancelRequested ? true : nil))
            }
            return leases
        }
    }
}

extension JobStore.Completion: DirectJSONWritable {
    public func writeJSON(into object: inout JSONObjectWriter) throws(JSONWriteError) {
        object.integer("id", id)
        object.string("session_id", session_id.wireString)
        try object.value("result", result)
    }
}
