import Foundation
import Logging
import PostgresNIO

/// Pausing and resuming queues (`gantry.paused_queues`).
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
}
