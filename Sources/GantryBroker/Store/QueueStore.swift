import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// A queue's limits: at most `concurrency` jobs reserved at once, at most `rateLimit` starts per period.
public struct QueueLimit: Sendable, Hashable {
    public var concurrency: Int?
    public var rateLimit: RateLimit?

    public init(concurrency: Int? = nil, rateLimit: RateLimit? = nil) {
        self.concurrency = concurrency
        self.rateLimit = rateLimit
    }

    public var isEmpty: Bool { concurrency == nil && rateLimit == nil }
}

/// Pausing and resuming queues (`gantry.paused_queues`) and their limits (`gantry.queue_limits`).
public struct QueueStore: Sendable {
    let storage: Storage
    let logger: Logger

    public init(storage: Storage, logger: Logger) {
        self.storage = storage
        self.logger = logger
    }

    public func pause(_ queue: String) async throws {
        let logger = logger
        try await storage.withConnection { connection in
            try await connection.query(
                "INSERT INTO gantry.paused_queues (queue) VALUES (\(queue)) ON CONFLICT (queue) DO NOTHING", logger: logger)
            return ()
        }
    }

    public func resume(_ queue: String) async throws {
        let logger = logger
        try await storage.withConnection { connection in
            try await connection.query("DELETE FROM gantry.paused_queues WHERE queue = \(queue)", logger: logger)
            return ()
        }
    }

    /// The paused queues and since when.
    public func paused() async throws -> [String: Date] {
        let logger = logger
        return try await storage.withConnection { connection -> [String: Date] in
            let rows = try await connection.query("SELECT queue, paused_at FROM gantry.paused_queues", logger: logger)
            var paused: [String: Date] = [:]
            for try await (queue, since) in rows.decode((String, Date).self) { paused[queue] = since }
            return paused
        }
    }

    /// Sets a queue's limits (removing them when `limit` has none). `source` says who set them, so a config
    /// file's limits can be taken back when they leave the file.
    public func configure(_ queue: String, _ limit: QueueLimit, source: SettingSource) async throws {
        let logger = logger
        try await storage.withConnection { connection in
            if limit.isEmpty {
                try await connection.query("DELETE FROM gantry.queue_limits WHERE queue = \(queue)", logger: logger)
            } else {
                try await connection.query("""
                    INSERT INTO gantry.queue_limits (queue, concurrency, rate_limit, rate_period_ms, source)
                    VALUES (\(queue), \(limit.concurrency), \(limit.rateLimit?.limit), \(limit.rateLimit?.periodMs), \(source.rawValue))
                    ON CONFLICT (queue) DO UPDATE
                    SET concurrency = excluded.concurrency, rate_limit = excluded.rate_limit,
                        rate_period_ms = excluded.rate_period_ms, source = excluded.source, updated_at = now()
                    """, logger: logger)
            }
            return ()
        }
    }

    /// Sets (or with nil removes) the queue's backlog alert; a changed threshold is judged afresh.
    public func setBacklogAlert(_ queue: String, ms: Int64?) async throws {
        let logger = logger
        try await storage.withConnection { connection in
            if let ms {
                try await connection.query("""
                    INSERT INTO gantry.queue_alerts AS a (queue, backlog_ms) VALUES (\(queue), \(ms))
                    ON CONFLICT (queue) DO UPDATE
                    SET backlog_ms = excluded.backlog_ms, updated_at = now(),
                        alerted_at = CASE WHEN a.backlog_ms = excluded.backlog_ms THEN a.alerted_at END
                    """, logger: logger)
            } else {
                try await connection.query("DELETE FROM gantry.queue_alerts WHERE queue = \(queue)", logger: logger)
            }
        }
    }

    /// Raises `queue.backlog` for each alerting queue whose oldest available job waited past its threshold and
    /// that has not alerted since it last recovered; re-arms those that recovered. Answers the queues alerted.
    public func checkBacklogs() async throws -> [String] {
        let logger = logger
        return try await storage.withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection in
                let rows = try await connection.query("""
                    WITH ages AS (
                        SELECT a.queue, a.backlog_ms, a.alerted_at,
                               (SELECT min(j.run_at) FROM gantry.jobs j WHERE j.queue = a.queue AND j.state = 'available') AS oldest,
                               (SELECT count(*) FROM gantry.jobs j WHERE j.queue = a.queue AND j.state = 'available') AS waiting
                        FROM gantry.queue_alerts a
                        FOR UPDATE OF a SKIP LOCKED
                    ), rearmed AS (
                        UPDATE gantry.queue_alerts q SET alerted_at = NULL FROM ages
                        WHERE q.queue = ages.queue AND ages.alerted_at IS NOT NULL
                          AND (ages.oldest IS NULL OR ages.oldest >= now() - ages.backlog_ms * interval '1 millisecond')
                        RETURNING q.queue
                    ), alerted AS (
                        UPDATE gantry.queue_alerts q SET alerted_at = now() FROM ages
                        WHERE q.queue = ages.queue AND ages.alerted_at IS NULL
                          AND ages.oldest < now() - ages.backlog_ms * interval '1 millisecond'
                        RETURNING q.queue, ages.oldest, ages.waiting, ages.backlog_ms
                    )
                    SELECT a.queue FROM alerted a
                    CROSS JOIN LATERAL (SELECT gantry.emit('queue.backlog', a.queue, jsonb_build_object('backlog', jsonb_build_object(
                        'oldest_available_at', to_char(a.oldest AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                        'waited_ms', (extract(epoch FROM now() - a.oldest) * 1000)::bigint, 'available', a.waiting,
                        'threshold_ms', a.backlog_ms)))) AS emitted
                    """, logger: logger)
                var alerted: [String] = []
                for try await queue in rows.decode(String.self) { alerted.append(queue) }
                return alerted
            }
        }
    }

    /// Removes limits a config file set on queues it no longer names.
    public func removeConfiguredLimits(except kept: [String]) async throws {
        let logger = logger
        try await storage.withConnection { connection in
            try await connection.query("""
                DELETE FROM gantry.queue_limits WHERE source = 'config' AND NOT queue = ANY(\(kept)::text[])
                """, logger: logger)
            return ()
        }
    }

    /// Every queue that has limits.
    public func limits() async throws -> [String: QueueLimit] {
        let logger = logger
        return try await storage.withConnection { connection -> [String: QueueLimit] in
            let rows = try await connection.query(
                "SELECT queue, concurrency, rate_limit, rate_period_ms FROM gantry.queue_limits", logger: logger)
            var limits: [String: QueueLimit] = [:]
            for try await (queue, concurrency, rateLimit, periodMs) in rows.decode((String, Int32?, Int32?, Int64?).self) {
                let rate = both(rateLimit, periodMs).map { RateLimit(limit: Int($0), periodMs: $1) }
                limits[queue] = QueueLimit(concurrency: concurrency.map(Int.init), rateLimit: rate)
            }
            return limits
        }
    }
}

private func both<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}
