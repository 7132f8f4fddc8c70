import Foundation
import Logging
import PostgresNIO

/// The `gantry.brokers` table: each broker's sign-in and heartbeat, so others can tell when it has died.
public struct BrokerStore: Sendable {
    let storage: Storage
    let logger: Logger

    public init(storage: Storage, logger: Logger) {
        self.storage = storage
        self.logger = logger
    }

    /// Signs in, or proves this broker is still alive.
    public func heartbeat(id: UUID, host: String, version: String) async throws {
        let logger = logger
        try await storage.withConnection { connection in
            try await connection.query("""
                INSERT INTO gantry.brokers (id, host, version) VALUES (\(id), \(host), \(version))
                ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
                """, logger: logger)
            return ()
        }
    }

    /// Signs out on a clean stop; rows of brokers that died are removed once long forgotten.
    public func signOut(id: UUID) async throws {
        let logger = logger
        try await storage.withConnection { connection in
            try await connection.query("""
                DELETE FROM gantry.brokers WHERE id = \(id) OR heartbeat_at < now() - interval '1 day'
                """, logger: logger)
            return ()
        }
    }
}
