import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Timers: what changes with the clock alone (due jobs promoted, stale jobs expired, finished jobs and old
/// activity pruned). Each takes `now`, so tests pin the clock.
extension JobStore {

    /// Makes scheduled jobs whose time has come by `now` available. Returns the queues that gained jobs and how
    /// long until the next scheduled job is due (nil when none is).
    public func promoteDueJobs(now: Date?, limit: Int) async throws -> (available: [String: Int], nextDueInMs: Int64?) {
        return try await storage.withConnection { connection -> (available: [String: Int], nextDueInMs: Int64?) in
            let rows = try await connection.query("""
                WITH due AS (
                    SELECT id FROM gantry.jobs WHERE state = 'scheduled' AND run_at <= coalesce(\(now)::timestamptz, now())
                    ORDER BY run_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                ), promoted AS (
                    UPDATE gantry.jobs j SET state = 'available' FROM due WHERE j.id = due.id RETURNING j.queue
                )
                SELECT queue, count(*)::int8 FROM promoted GROUP BY queue
                UNION ALL
                SELECT NULL, (extract(epoch FROM min(run_at) - coalesce(\(now)::timestamptz, now())) * 1000)::int8 FROM gantry.jobs
                WHERE state = 'scheduled' AND run_at > coalesce(\(now)::timestamptz, now())
                """, logger: logger)
            var available: [String: Int] = [:]
            var nextDue: Int64?
            for try await (queue, value) in rows.decode((String?, Int64?).self) {
                if let queue, let value { available[queue] = Int(value) } else if queue == nil { nextDue = value }
            }
            return (available, nextDue)
        }
    }

    /// Jobs still waiting when their queue timeout has passed by `now` become `expired` and are never handed
    /// out. Returns how many expired, by queue.
    public func expireStaleJobs(now: Date?, limit: Int) async throws -> [String: Int] {
        return try await storage.withConnection { connection -> [String: Int] in
            let rows = try await connection.query("""
                WITH stale AS (
                    SELECT id FROM gantry.jobs
                    WHERE expires_at IS NOT NULL AND expires_at <= coalesce(\(now)::timestamptz, now()) AND state <> 'reserved'
                    ORDER BY expires_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                ), gone AS (
                    DELETE FROM gantry.jobs j USING stale WHERE j.id = stale.id RETURNING j.*
                ), moved AS (
                    INSERT INTO gantry.finished_jobs (\(unescaped: Self.movedColumns), errors, state)
                    SELECT \(unescaped: Self.movedColumns), errors, 'expired' FROM gone
                    RETURNING queue
                )
                SELECT queue, count(*) FROM moved GROUP BY queue
                """, logger: logger)
            var expired: [String: Int] = [:]
            for try await (queue, count) in rows.decode((String, Int64).self) { expired[queue] = Int(count) }
            return expired
        }
    }

    /// Arbitrary but fixed: the advisory lock that lets one broker at a time prune finished jobs.
    static let cleanerLockKey: Int64 = 0x6761_6E74_7263

    /// Deletes up to `batch` finished jobs in `states` (of `queue`, if given) that finished more than
    /// `olderThanMs` ago, oldest first, in one short statement. The background cleaner passes `exclusive`, so
    /// only the broker holding the cleaner lock deletes and the others delete nothing; an operator's cleanup
    /// does not wait for the lock. Returns how many were deleted.
    public func pruneFinishedJobs(states: [JobState], olderThanMs: Int64, queue: String? = nil, batch: Int = 1000,
                                  exclusive: Bool = true, now: Date? = nil) async throws -> Int {
        let logger = logger
        let names = states.map(\.rawValue)
        return try await storage.withConnection { connection -> Int in
            let rows = try await connection.query("""
                WITH lead AS (
                    SELECT CASE WHEN \(exclusive) THEN pg_try_advisory_xact_lock(\(Self.cleanerLockKey)) ELSE true END AS held
                ), doomed AS (
                    SELECT id FROM gantry.finished_jobs
                    WHERE (SELECT held FROM lead) AND state = ANY(\(names)::text[])
                      AND finished_at < coalesce(\(now)::timestamptz, now()) - \(olderThanMs) * interval '1 millisecond'
                      AND (\(queue)::text IS NULL OR queue = \(queue))
                    ORDER BY finished_at LIMIT \(batch)
                    FOR UPDATE SKIP LOCKED
                ), deleted AS (
                    DELETE FROM gantry.finished_jobs f USING doomed WHERE f.id = doomed.id RETURNING 1
                )
                SELECT count(*) FROM deleted
                """, logger: logger)
            return Int(try await rows.decode(Int64.self).first(where: { _ in true }) ?? 0)
        }
    }

    /// Forgets per-minute activity older than the longest window `stats` reports (an hour, with a margin), unique
    /// keys whose window after completion ended, and job starts older than their queue's rate window, as of `now`.
    public func pruneActivity(now: Date?) async throws {
        let logger = logger
        try await storage.withConnection { connection in
            try await connection.query("DELETE FROM gantry.queue_activity WHERE minute < coalesce(\(now)::timestamptz, now()) - interval '2 hours'", logger: logger)
            try await connection.query("DELETE FROM gantry.unique_holds WHERE held_until < coalesce(\(now)::timestamptz, now())", logger: logger)
            // Starts older than their queue's rate window count for nothing (all of them, once a queue has no limit).
            try await connection.query("""
                DELETE FROM gantry.queue_starts s
                WHERE s.started_at < coalesce(\(now)::timestamptz, now()) - coalesce(
                    (SELECT l.rate_period_ms FROM gantry.queue_limits l WHERE l.queue = s.queue), 0) * interval '1 millisecond'
                """, logger: logger)
            return ()
        }
    }
}
