import Logging
import PostgresNIO

/// Brings the `gantry` schema up to the newest embedded migration, once, even with several brokers starting
/// together (they queue on an advisory lock; each migration commits with its version row or not at all).
public struct Migrator: Sendable {
    /// Arbitrary but fixed: the advisory lock key every Gantry broker uses to migrate one at a time.
    static let lockKey: Int64 = 0x6761_6E74_7279
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public enum Failure: Error, CustomStringConvertible {
        case schemaNewerThanBroker(database: Int, broker: Int)

        public var description: String {
            switch self {
            case .schemaNewerThanBroker(let database, let broker):
                "The database's gantry schema is at version \(database), newer than this gantryd knows (\(broker)). Run a gantryd at least as new as the one that migrated it."
            }
        }
    }

    /// Applies what is missing and returns the versions it applied.
    @discardableResult
    public func migrate() async throws -> [Int] {
        let newest = Migration.all.last?.version ?? 0
        return try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: logger)
            try await connection.query("CREATE SCHEMA IF NOT EXISTS gantry", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS gantry.schema_migrations (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """, logger: logger)
            let current = try await Self.currentVersion(connection, logger: logger)
            guard current <= newest else { throw Failure.schemaNewerThanBroker(database: current, broker: newest) }
            var applied: [Int] = []
            for migration in Migration.all where migration.version > current {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO gantry.schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger)
                logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                applied.append(migration.version)
            }
            return applied
        }
    }

    /// The schema version the database is at (0 before the first migration).
    public func currentVersion() async throws -> Int {
        try await client.withConnection { connection in try await Self.currentVersion(connection, logger: logger) }
    }

    private static func currentVersion(_ connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.query("""
            SELECT coalesce(max(version), 0)::int4 FROM gantry.schema_migrations
            WHERE to_regclass('gantry.schema_migrations') IS NOT NULL
            """, logger: logger)
        for try await version in rows.decode(Int32.self) { return Int(version) }
        return 0
    }
}
