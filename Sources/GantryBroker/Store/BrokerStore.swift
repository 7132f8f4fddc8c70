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

    /// The channel brokers pass operators' orders to workers on (`workers.quiet`, `workers.stop`).
    public static let controlChannel = "gantry_control"

    /// Signs in, or proves this broker is still alive, publishing the workers connected to it (a JSON array of
    /// `WorkerInfo`) so `workers.list` on any broker can show them.
    public func heartbeat(id: UUID, host: String, version: String, workers: String = "[]") async throws {
        let logger = logger
        try await storage.withConnection { connection in
            try await connection.query("""
                INSERT INTO gantry.brokers (id, host, version, workers) VALUES (\(id), \(host), \(version), \(workers)::jsonb)
                ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), workers = excluded.workers
                """, logger: logger)
            return ()
        }
    }

    /// What the other live brokers last published of their workers, each a JSON array of `WorkerInfo`.
    public func workersOfOtherBrokers(than id: UUID, aliveWithinMs: Int64) async throws -> [String] {
        let logger = logger
        return try await storage.withConnection { connection -> [String] in
            let rows = try await connection.query("""
                SELECT workers::text FROM gantry.brokers
                WHERE id <> \(id) AND heartbeat_at > now() - \(aliveWithinMs) * interval '1 millisecond'
                """, logger: logger)
            var lists: [String] = []
            for try await list in rows.decode(String.self) { lists.append(list) }
            return lists
        }
    }

    /// Tells every broker (through LISTEN/NOTIFY) to pass an order on to the workers it holds.
    public func sendControl(_ payload: String) async throws {
        let logger = logger
        try await storage.withConnection { connection in
            try await connection.query("SELECT pg_notify(\(Self.controlChannel), \(payload))", logger: logger)
            return ()
        }
    }

    /// The schema version the database is at (0 before the first migration).
    public func schemaVersion() async throws -> Int {
        let logger = logger
        return try await storage.withConnection { connection -> Int in
            do {
                let rows = try await connection.query("SELECT coalesce(max(version), 0)::int4 FROM gantry.schema_migrations", logger: logger)
                for try await version in rows.decode(Int32.self) { return Int(version) }
                return 0
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P01" || error.serverInfo?[.sqlState] == "3F000" {
                return 0   // no such table or schema: never migrated
            }
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
