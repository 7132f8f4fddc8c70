import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Operator actions on single jobs: retry, cancel, discard.
extension JobStore {
    /// Final states an operator may bring a job back from.
    public static let retryableStates: [JobState] = [.dead, .expired, .cancelled]

    /// Moves a dead, expired or cancelled job back to `available`, keeping its errors; a job out of attempts
    /// gets one more, and a queue timeout that already passed no longer applies. Returns its queue, or nil
    /// when no such job is in a retryable state.
    public func retryJob(id: Int64) async throws -> String? {
        let states = Self.retryableStates.map(\.rawValue)
        return try await storage.withConnection { connection -> String? in
            let rows = try await connection.query("""
                WITH revived AS (
                    DELETE FROM gantry.finished_jobs f WHERE id = \(id) AND state = ANY(\(states)::text[])
                      AND NOT EXISTS (SELECT 1 FROM gantry.jobs live WHERE live.unique_key = f.unique_key)
                      AND NOT EXISTS (SELECT 1 FROM gantry.unique_holds h
                                      WHERE h.unique_key = f.unique_key AND h.held_until > now() AND h.job_id <> f.id)
                    RETURNING *
                )
                INSERT INTO gantry.jobs (id, queue, type, args, state, priority, run_at, attempt, max_attempts, timeout_ms,
                                         expires_at, unique_key, tags, meta, errors, enqueued_at, operation_id, step_id)
                OVERRIDING SYSTEM VALUE
                SELECT id, queue, type, args, 'available', priority, now(), attempt, greatest(max_attempts, attempt + 1),
                       timeout_ms, NULL, unique_key, tags, meta, errors, enqueued_at, operation_id, step_id
                FROM revived
                RETURNING queue
                """, logger: logger)
            for try await queue in rows.decode(String.self) { return queue }
            return nil
        }
    }

    /// The waiting or running job that holds the unique key of finished job `id`, or the completed one still
    /// holding it for its `unique_for_ms`, if any (it keeps `id` from being retried meanwhile).
    public func uniqueKeyHolder(forFinishedJob id: Int64) async throws -> Int64? {
        return try await storage.withConnection { connection -> Int64? in
            let rows = try await connection.query("""
                SELECT live.id FROM gantry.finished_jobs f JOIN gantry.jobs live ON live.unique_key = f.unique_key
                WHERE f.id = \(id)
                UNION ALL
                SELECT h.job_id FROM gantry.finished_jobs f JOIN gantry.unique_holds h ON h.unique_key = f.unique_key
                WHERE f.id = \(id) AND h.held_until > now() AND h.job_id <> f.id
                """, logger: logger)
            for try await holder in rows.decode(Int64.self) { return holder }
            return nil
        }
    }

    /// Moves a waiting (scheduled or available) job to `cancelled`; a reserved one is flagged instead, so its
    /// worker hears of it and it is never retried. Returns the job's state afterwards (`cancelled` or
    /// `reserved`), or nil when it is in neither case.
    public func cancelJob(id: Int64) async throws -> JobState? {
        let logger = logger
        return try await storage.withConnection { connection -> JobState? in
            let rows = try await connection.query("""
                WITH gone AS (
                    DELETE FROM gantry.jobs WHERE id = \(id) AND state IN ('scheduled', 'available') RETURNING *
                ), moved AS (
                    INSERT INTO gantry.finished_jobs (\(unescaped: Self.movedColumns), errors, state)
                    SELECT \(unescaped: Self.movedColumns), errors, 'cancelled' FROM gone
                    RETURNING state
                ), flagged AS (
                    UPDATE gantry.jobs SET cancel_requested_at = coalesce(cancel_requested_at, now())
                    WHERE id = \(id) AND state = 'reserved'
                    RETURNING state
                )
                SELECT state FROM moved UNION ALL SELECT state FROM flagged
                """, logger: logger)
            for try await state in rows.decode(String.self) { return JobState(rawValue: state) }
            return nil
        }
    }

    /// Deletes a waiting or finished job for good. Returns false when there is none such (or a worker holds it).
    public func discardJob(id: Int64) async throws -> Bool {
        let logger = logger
        return try await storage.withConnection { connection -> Bool in
            let rows = try await connection.query("""
                WITH live AS (
                    -- A waiting step of an operation is cancelled instead: deleted, its operation would wait for ever.
                    DELETE FROM gantry.jobs WHERE id = \(id) AND state IN ('scheduled', 'available') AND step_id IS NULL RETURNING id
                ), finished AS (
                    DELETE FROM gantry.finished_jobs WHERE id = \(id) RETURNING id
                )
                SELECT count(*) FROM (SELECT id FROM live UNION ALL SELECT id FROM finished) AS deleted
                """, logger: logger)
            return try await rows.decode(Int64.self).first(where: { _ in true }) == 1
        }
    }
}
