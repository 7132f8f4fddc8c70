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
        let lease = LeaseTerms(sessionID: sessionID, leaseMs: leaseMs, defaultLeaseMs: defaultLeaseMs)
        let limitedQueues = queues.filter(limited.contains)
        guard !limitedQueues.isEmpty else {
            let request = ClaimRequest(sessionID: sessionID, max: max, leaseMs: leaseMs)
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
                let allowances = queues.map { room[$0]?.allowance ?? -1 }
                let rateLimited = queues.filter { room[$0]?.rateLimited == true }
                let jobs = try await claimStatement(
                    queues: queues, allowances: allowances, rateLimited: rateLimited, max: max, lease: lease, on: connection)
                let waits = room.values.compactMap { $0.allowance == 0 ? $0.nextStartInMs : nil }
                let until = jobs.isEmpty ? waits.min().map { ContinuousClock.now + .milliseconds(Swift.max(1, $0)) } : nil
                return Claim(jobs: jobs, rateLimitedUntil: until)
            }
        }
    }

    /// The columns every claim returns first: id, type, args, queue, priority, attempt, max_attempts,
    /// enqueued_at, lease_expires_at, meta.
    typealias ClaimedColumns = (Int64, String, JSONValue, String, Int16, Int32, Int32, Date, Date, JSONValue)

    static func reservedJob(_ row: ClaimedColumns) -> ReservedJob {
        ReservedJob(
            id: String(row.0), type: row.1, args: row.2, queue: row.3, priority: Int(row.4), attempt: Int(row.5),
            maxAttempts: Int(row.6), enqueuedAt: row.7, leaseExpiresAt: row.8, meta: row.9)
    }

    struct LeaseTerms {
        var sessionID: UUID
        var leaseMs: Int64?
        var defaultLeaseMs: Int64
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

    /// `allowances[i]` caps queue i (-1: no cap); jobs claimed from `rateLimited` queues are logged as starts.
    private func claimStatement(queues: [String], allowances: [Int], rateLimited: [String],
                                max: Int, lease: LeaseTerms, on connection: PostgresConnection) async throws -> [ReservedJob] {
        let rows = try await connection.query("""
            WITH candidates AS (
                SELECT picked.id, q.position
                FROM (
                    SELECT name, position, nullif(allowance, -1) AS allowance
                    FROM unnest(\(queues)::text[], \(allowances)::bigint[]) WITH ORDINALITY AS given(name, allowance, position)
                    WHERE NOT EXISTS (SELECT 1 FROM gantry.paused_queues p WHERE p.queue = given.name)
                ) AS q
                CROSS JOIN LATERAL (
                    SELECT j.id, j.priority, j.run_at FROM gantry.jobs j
                    WHERE j.queue = q.name AND j.state = 'available'
                      AND (j.expires_at IS NULL OR j.expires_at > now())
                    ORDER BY j.priority, j.run_at, j.id
                    LIMIT least(\(max), coalesce(q.allowance, \(max)))
                    FOR UPDATE SKIP LOCKED
                ) picked
                ORDER BY q.position, picked.priority, picked.run_at, picked.id
                LIMIT \(max)
            ), claimed AS (
                UPDATE gantry.jobs j
                SET state = 'reserved', attempt = j.attempt + 1, reserved_at = clock_timestamp(), session_id = \(lease.sessionID),
                    broker_id = \(brokerID),
                    lease_expires_at = now() + coalesce(\(lease.leaseMs), j.timeout_ms, \(lease.defaultLeaseMs)) * interval '1 millisecond'
                FROM candidates c
                WHERE j.id = c.id
                RETURNING j.id, j.type, j.args, j.queue, j.priority, j.attempt, j.max_attempts, j.enqueued_at,
                          j.lease_expires_at, j.meta, c.position, j.run_at
            ), started AS (
                INSERT INTO gantry.queue_starts (queue, started_at)
                SELECT queue, clock_timestamp() FROM claimed WHERE queue = ANY(\(rateLimited)::text[])
            )
            SELECT * FROM claimed
            """, logger: logger)
        var claimed: [(position: Int64, runAt: Date, job: ReservedJob)] = []
        for try await row in rows.decode((Int64, String, JSONValue, String, Int16, Int32, Int32, Date, Date, JSONValue, Int64, Date).self) {
            claimed.append((row.10, row.11, Self.reservedJob((row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9))))
        }
        // RETURNING has no order of its own: restore the order the jobs were picked in.
        return claimed.sorted {
            ($0.position, $0.job.priority, $0.runAt, Int64($0.job.id)!) < ($1.position, $1.job.priority, $1.runAt, Int64($1.job.id)!)
        }.map(\.job)
    }
}
