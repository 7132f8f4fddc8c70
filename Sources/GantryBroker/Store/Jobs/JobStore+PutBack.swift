import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Put back: jobs whose holder went away (its connection closed, its lease ran out, its broker died) are
/// retried or buried, with the attempt recorded as failed.
extension JobStore {
    /// Puts back every job leased to the session (its connection closed), recording why. Jobs with attempts
    /// left become available at once; the others are dead. Returns the queues that gained available jobs.
    /// `announce`, given what was put back, says what `worker.lost` reports; it is raised in the same transaction.
    public func releaseSessionJobs(sessionID: UUID, workerID: String?,
                                   announce: (@Sendable ([String: Int]) -> JSONValue)? = nil) async throws -> [String: Int] {
        let logger = logger
        let failure = FailedAttempt.connectionClosed(workerID: workerID)
        return try await storage.withConnection { connection in
            try await connection.withTransaction(logger: logger) { transaction in
                let released = try await Self.putBack(on: transaction, logger: logger, """
                WITH lost AS (
                    SELECT j.id, j.attempt >= j.max_attempts OR j.cancel_requested_at IS NOT NULL AS exhausted,
                           \(failure.fields)::jsonb || \(unescaped: FailedAttempt.rowFields(of: "j")) AS error
                    FROM gantry.jobs j WHERE j.session_id = \(sessionID) AND j.state = 'reserved'
                    FOR UPDATE
                )
                \(unescaped: Self.putBackRest)
                """)
                if !released.isEmpty, let announce {
                    try await transaction.query(
                        "SELECT gantry.emit(\(LifecycleEvent.workerLost.rawValue), NULL, \(announce(released))::jsonb)", logger: logger)
                }
                return released
            }
        }
    }

    /// Arbitrary but fixed: the advisory lock that lets one broker at a time reap.
    static let reaperLockKey: Int64 = 0x6761_6E74_7273

    /// Puts back, as `releaseSessionJobs` does, jobs whose lease ran out and jobs held through a broker that
    /// stopped heartbeating (it died with its sessions), as of `now`. Only one broker reaps at a time: the others
    /// find the advisory lock taken and return nil. The lock is a transaction's, so a pooler cannot strand it.
    public func reapLostLeases(brokerTimeoutMs: Int64, now: Date?, limit: Int) async throws -> [String: Int]? {
        let logger = logger
        return try await storage.withConnection { connection -> [String: Int]? in
            try await connection.withTransaction(logger: logger) { transaction -> [String: Int]? in
                let lock = try await transaction.query("SELECT pg_try_advisory_xact_lock(\(Self.reaperLockKey))", logger: logger)
                guard try await lock.decode(Bool.self).first(where: { _ in true }) == true else { return nil }
                return try await Self.putBack(on: transaction, logger: logger, """
                    WITH clock AS (
                        SELECT coalesce(\(now)::timestamptz, now()) AS now
                    ), lost AS (
                        SELECT j.id, j.attempt >= j.max_attempts OR j.cancel_requested_at IS NOT NULL AS exhausted,
                               CASE WHEN j.lease_expires_at < clock.now THEN \(FailedAttempt.leaseExpired.fields)::jsonb
                                    ELSE \(FailedAttempt.brokerLost.fields)::jsonb END
                               || \(unescaped: FailedAttempt.rowFields(of: "j", at: "clock.now")) AS error
                        FROM gantry.jobs j CROSS JOIN clock
                        WHERE j.state = 'reserved' AND (
                            j.lease_expires_at < clock.now
                            OR NOT EXISTS (
                                SELECT 1 FROM gantry.brokers b
                                WHERE b.id = j.broker_id AND b.heartbeat_at > clock.now - \(brokerTimeoutMs) * interval '1 millisecond'))
                        ORDER BY j.lease_expires_at LIMIT \(limit)
                        FOR UPDATE OF j SKIP LOCKED
                    )
                    \(unescaped: Self.putBackRest)
                    """)
            }
        }
    }

    /// After a `lost` CTE (id, exhausted, error): retry or bury each job (as `cancelled` when an operator asked
    /// to cancel it), count the failures, and report the queues that gained available jobs.
    private static let putBackRest = """
        , back AS (
            UPDATE gantry.jobs j
            SET state = 'available', errors = j.errors || jsonb_build_array(lost.error), run_at = now(),
                session_id = NULL, broker_id = NULL, lease_expires_at = NULL
            FROM lost WHERE j.id = lost.id AND NOT lost.exhausted
            RETURNING j.queue
        ), gone AS (
            DELETE FROM gantry.jobs j USING lost WHERE j.id = lost.id AND lost.exhausted
            RETURNING j.*, lost.error
        ), dead AS (
            INSERT INTO gantry.finished_jobs (\(movedColumns), errors, state)
            SELECT \(movedColumns), errors || jsonb_build_array(error),
                   CASE WHEN cancel_requested_at IS NULL THEN 'dead' ELSE 'cancelled' END FROM gone
            RETURNING queue
        ), failed AS (
            SELECT queue FROM back UNION ALL SELECT queue FROM dead
        ), counted AS (
            \(countFailures("failed"))
        )
        SELECT queue, count(*) FROM back GROUP BY queue
        """

    private static func putBack(on connection: PostgresConnection, logger: Logger, _ query: PostgresQuery) async throws -> [String: Int] {
        let rows = try await connection.query(query, logger: logger)
        var available: [String: Int] = [:]
        for try await (queue, count) in rows.decode((String, Int64).self) { available[queue] = Int(count) }
        return available
    }
}
