import Foundation
import GantryBroker
import Logging
import PostgresNIO
import Synchronization

/// One throwaway PostgreSQL cluster per test process, started on first use and stopped when the process
/// exits (or by its watchdog, if the process dies). Each test takes a fresh database in it.
public enum TestPostgres {
    private static let cluster = Task<EmbeddedPostgres, any Error> {
        let directory = URL(fileURLWithPath: "/tmp/gantry-test-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        var logger = Logger(label: "test-postgres")
        logger.logLevel = .warning
        // Durability is the broker's promise to clients, not the test cluster's to the disk: skip fsync.
        let postgres = EmbeddedPostgres(
            directory: directory, database: "postgres", port: 5432,
            settings: ["fsync": "off", "full_page_writes": "off", "synchronous_commit": "off", "max_connections": "1000"],
            logger: logger)
        _ = try await postgres.start()
        atexit {
            TestPostgres.stopAtExit()
        }
        stopper.withLock { $0 = postgres }
        return postgres
    }

    private static let stopper = Mutex<EmbeddedPostgres?>(nil)

    private static func stopAtExit() {
        guard let postgres = stopper.withLock({ $0 }) else { return }
        postgres.stop()
        try? FileManager.default.removeItem(at: postgres.directory)
    }

    /// A cluster of its own, for a test that stops and starts PostgreSQL. The caller stops it (its watchdog
    /// does, should the test process die first).
    public static func privateCluster() async throws -> EmbeddedPostgres {
        let directory = URL(fileURLWithPath: "/tmp/gantry-test-\(getpid())-\(UUID().uuidString.prefix(8))")
        var logger = Logger(label: "private-postgres")
        logger.logLevel = .warning
        let postgres = EmbeddedPostgres(directory: directory, database: "gantry", settings: ["fsync": "off"], logger: logger)
        _ = try await postgres.start()
        return postgres
    }

    /// A new, empty database: its URL (for a `gantryd` process) and its client configuration.
    public static func freshDatabase() async throws -> (url: String, configuration: PostgresClient.Configuration) {
        let postgres = try await cluster.value
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try await postgres.createDatabaseIfMissing(String(name))
        return (postgres.url(database: String(name)), postgres.clientConfiguration(database: String(name)))
    }

    /// Runs `body` with a running client on a fresh, migrated database.
    public static func withMigratedDatabase<T: Sendable>(
        _ body: @Sendable (PostgresClient, String) async throws -> T
    ) async throws -> T {
        let (url, configuration) = try await freshDatabase()
        var logger = Logger(label: "test")
        // PostgresNIO warns when a lease races the pool's start; that is expected here.
        logger.logLevel = .error
        let client = PostgresClient(configuration: configuration.withGantrySessionSettings(), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            defer { group.cancelAll() }
            try await Migrator(client: client, logger: logger).migrate()
            return try await body(client, url)
        }
    }
}
