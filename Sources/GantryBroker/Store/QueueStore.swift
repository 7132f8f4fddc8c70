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
