import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Reserving jobs: one statement for queues without limits; for limited queues a short transaction that takes
/// the queues' limit rows first, so concurrent claims on any broker take turns and each counts the others'.
extension JobStore {
    public struct Claim: Sendable {
        public var jobs: [ReservedJob]
        /// A rate limit held jobs back: when its window lets the next one start.
        public var rateLimitedUntil: ContinuousClock.Instant?
    }

    /// Leases up to `max` available jobs, taking the queues in the order given (paused ones skipped) and,
    /// within a queue, by priority, then run_at, then enqueue order. `SKIP LOCKED` lets concurrent claims pass
    /// each other without ever handing one job to two sessions. `limited` names the queues this broker knows to
    /// have limits; a queue that got limits it has not heard of yet is skipped rather than claimed unchecked
    /// (see `claimJobsTogether`).
    public func claimJobs(queues: [String], max: Int, sessionID: UUID, leaseMs: Int64?, defaultLeaseMs: Int64,
                          limited: Set<String> = []) async throws -> Claim {
        let request = ClaimRequest(sessionID: sessionID, max: max, leaseMs: leaseMs)
        let limitedQueues = queues.filter(limited.contains)
        guard !limitedQueues.isEmpty else {
            return Claim(jobs: try await claimJobsTogether(queues: queues, requests: [request], defaultLeaseMs: defaultLeaseMs)[0])
        }
        let logger = logger
        return try await storage.withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query("""
                    SELECT queue FROM gantry.queue_limits WHERE queue = ANY(\(limitedQueues)::text[]) ORDER BY queue FOR UPDATE
                    """, logger: logger)
                // A new statement after the lock: it sees every claim committed by whoever held it before us.
                let room = try await roomUnderLimits(queues: limitedQueues, on: connection)
                let limits = LimitsInForce(
                    allowances: queues.map { room[$0]?.allowance ?? -1 }, rateLimited: queues.filter { room[$0]?.rateLimited == true })
                let jobs = try await claimStatement(
                    queues: queues, requests: [request], defaultLeaseMs: defaultLeaseMs, limits: limits, on: connection)[0]
                let waits = room.values.compactMap { $0.allowance == 0 ? $0.nextStartInMs : nil }
                let until = jobs.isEmpty ? waits.min().map { ContinuousClock.now + .milliseconds(Swift.max(1, $0)) } : nil
                return Claim(jobs: jobs, rateLimitedUntil: until)
            }
        }
    }

    struct Room {
        /// How many more jobs may start now (never below 0).
        var allowance: Int
        var rateLimited: Bool
        /// When the rate limit's window lets one more start, if it is full.
        var nextStartInMs: Int64?
    }

    /// Free concurrency slots (reserved jobs counted from the counters) and free starts in the rate window.
    private func roomUnderLimits(queues: [String], on connection: PostgresConnection) async throws -> [String: Room] {
        let rows = try await connection.query("""
            WITH recent AS (
                SELECT l.queue, l.concurrency, l.rate_limit,
                       (SELECT sum(c.value) FROM gantry.queue_counters c
                        WHERE c.queue = l.queue AND c.counter = 'reserved')::bigint AS reserved,
                       (SELECT count(*) FROM gantry.queue_starts s
                        WHERE s.queue = l.queue AND s.started_at > clock_timestamp() - l.rate_period_ms * interval '1 millisecond') AS starts,
                       (SELECT min(s.started_at) + l.rate_period_ms * interval '1 millisecond' FROM gantry.queue_starts s
                        WHERE s.queue = l.queue AND s.started_at > clock_timestamp() - l.rate_period_ms * interval '1 millisecond') AS window_frees_at
                FROM gantry.queue_limits l WHERE l.queue = ANY(\(queues)::text[])
            )
            SELECT queue, (concurrency - coalesce(reserved, 0))::bigint, (rate_limit - starts)::bigint,
                   ceil(extract(epoch FROM window_frees_at - clock_timestamp()) * 1000)::bigint
            FROM recent
            """, logger: logger)
        var room: [String: Room] = [:]
        for try await (queue, freeSlots, freeStarts, windowFreesInMs) in rows.decode((String, Int64?, Int64?, Int64?).self) {
            let allowance = [freeSlots, freeStarts].compactMap { $0 }.min().map { Int(Swift.max(0, $0)) } ?? -1
            room[queue] = Room(
                allowance: allowance, rateLimited: freeStarts != nil,
                nextStartInMs: (freeStarts ?? 1) <= 0 ? windowFreesInMs : nil)
        }
        return room
    }
}
