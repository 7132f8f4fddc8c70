import ArgumentParser
import Foundation
import GantryBroker
import Logging
import PostgresNIO
import ServiceLifecycle
import UnixSignals


struct Gantryd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gantryd",
        abstract: "Gantry's job broker: newline-delimited JSON-RPC over TCP, every job kept in PostgreSQL.",
        discussion: """
            With no database URL, gantryd creates and runs an embedded PostgreSQL in --data-dir (default .gantry) \
            and stops it on exit. Try it:  printf '{"jsonrpc":"2.0","id":1,"method":"stats"}\\n' | nc -N 127.0.0.1 7440
            """,
        subcommands: [Serve.self, Migrate.self],
        defaultSubcommand: Serve.self)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the broker (the default).", discussion: CommonOptions.settingsHelp)

    @OptionGroup var common: CommonOptions

    @Flag(help: "Do not run database migrations on start (run `gantryd migrate` yourself).")
    var noMigrate = false

    func run() async throws {
        let settings = try common.resolve()
        let logger = bootstrapLogging(settings)
        exitWhenSupervisorDies(logger: logger)
        raiseOpenFileLimit(logger: logger)
        let configuration = settings.broker
        let (host, port) = (configuration.host, configuration.port)
        let (httpHost, httpPort) = (settings.httpHost, settings.httpPort)
        if configuration.tokens.isEmpty {
            logger.warning("no tokens configured: every client that can connect may do everything", metadata: [
                "listen": "\(configuration.host):\(configuration.port)",
            ])
        } else {
            logger.info("clients must authenticate", metadata: [
                "tokens": "\(configuration.tokens.map { "\($0.name) (\($0.role.rawValue))" }.joined(separator: ", "))",
            ])
        }

        try await withDatabase(settings, logger: logger) { client, url in
            // Lines tests and scripts can wait for, whatever the log format.
            let pipelines = PostgresPipelines(url: url, logger: logger)
            let broker = BrokerService(configuration: configuration, client: client, pipelines: pipelines, migrate: !noMigrate,
                                       logger: logger) { address in
                FileHandle.standardOutput.write(Data("gantryd listening on \(address.ipAddress ?? host):\(address.port ?? port)\n".utf8))
            }
            let http = HTTPService(broker: broker.broker, host: httpHost, port: httpPort, logger: logger) { address in
                FileHandle.standardOutput.write(Data("gantryd http on \(address.ipAddress ?? httpHost):\(address.port ?? httpPort)\n".utf8))
            }
            // Shut down in reverse: the broker drains first (with /ready saying so), then HTTP, then PostgreSQL.
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: client),
                    .init(service: http),
                    .init(service: broker.self, successTerminationBehavior: .gracefullyShutdownGroup),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
            try await group.run()
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Bring the database's gantry schema up to date, then exit.")

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let settings = try common.resolve()
        let logger = bootstrapLogging(settings)
        try await withDatabase(settings, logger: logger) { client, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                let applied = try await Migrator(client: client, logger: logger).migrate()
                print(applied.isEmpty ? "gantry schema is up to date" : "applied migrations \(applied.map(String.init).joined(separator: ", "))")
                group.cancelAll()
            }
        }
    }
}

/// Runs `body` with a client for the configured database, or for an embedded one started (and stopped) here, and
/// the database's URL (for libpq).
func withDatabase(_ settings: GantrydSettings, logger: Logger,
                  _ body: (PostgresClient, String) async throws -> Void) async throws {
    var embedded: EmbeddedPostgres?
    let postgresConfiguration: PostgresClient.Configuration
    let databaseURL: String
    if let url = settings.databaseURL {
        databaseURL = url
        do { postgresConfiguration = try DatabaseURL.configuration(from: url) } catch { throw ValidationError("\(error)") }
        logger.info("using PostgreSQL", metadata: ["url": "\(DatabaseURL.redacted(url))"])
    } else {
        let database = EmbeddedPostgres(directory: URL(fileURLWithPath: settings.dataDirectory), logger: logger)
        do { postgresConfiguration = try await database.start() } catch {
            throw ValidationError("Could not start the embedded PostgreSQL: \(String(reflecting: error))")
        }
        embedded = database
        databaseURL = database.url(database: database.database)
    }
    defer { embedded?.stop() }
    let client = PostgresClient(configuration: postgresConfiguration.withGantrySessionSettings(), backgroundLogger: logger)
    try await body(client, databaseURL)
}

func bootstrapLogging(_ settings: GantrydSettings) -> Logger {
    let json = settings.logFormat == "json"
    let level = Logger.Level(rawValue: settings.logLevel) ?? .info
    LoggingSystem.bootstrap { label in
        var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    return Logger(label: "gantryd")
}

/// With `GANTRY_EXIT_WITH_PID` set (test harnesses, simple supervisors), exits once that process is gone, so
/// a crashed parent leaves no broker behind.
func exitWhenSupervisorDies(logger: Logger) {
    guard let text = ProcessInfo.processInfo.environment["GANTRY_EXIT_WITH_PID"], let pid = pid_t(text) else { return }
    Task.detached {
        while kill(pid, 0) == 0 || errno != ESRCH {
            try? await Task.sleep(for: .milliseconds(500))
        }
        logger.warning("the supervising process \(pid) is gone; exiting")
        exit(1)
    }
}

extension Gantryd {
    /// ArgumentParser's async entry point. (Called from top-level code, `main()` would resolve to the
    /// synchronous overload, which only prints help for async commands.)
    static func runFromCommandLine() async {
        await main()
    }
}

/// Every client connection is a file descriptor: allow as many as the system lets this process have.
func raiseOpenFileLimit(logger: Logger) {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 {
        logger.warning("could not raise the open-file limit", metadata: ["limit": "\(limit.rlim_cur)"])
    }
}
