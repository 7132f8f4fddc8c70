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
    static let configuration = CommandConfiguration(abstract: "Run the broker (the default).")

    @OptionGroup var common: CommonOptions

    @OptionGroup(title: "Security and limits") var security: SecurityOptions

    @Option(help: "Address for JSON-RPC clients (default 127.0.0.1:7440; port 0 picks a free one).")
    var listen: String?

    @Option(help: "Address for HTTP: /live, /ready and /metrics (default 127.0.0.1:7441; port 0 picks a free one).")
    var http: String?

    @Option(help: "The longest request line accepted, in bytes (default 1048576).")
    var maxLineBytes: Int?

    @Option(help: "Lease length when neither reserve nor the job sets one, in ms (default 1800000, 30 minutes).")
    var defaultLeaseMs: Int64?

    @Option(help: "On SIGTERM, how long workers may keep acking what they hold, in ms (default 10000).")
    var drainGraceMs: Int64?

    @Option(help: "How long a request may wait for a database connection before it is answered -32004 storage unavailable, in ms (default 5000).")
    var storageTimeoutMs: Int64?

    @Option(help: "A broker silent for this long is dead and the others put back the jobs its workers held, in ms (default 10000).")
    var brokerTimeoutMs: Int64?

    @Option(help: "A client that starts a line and does not finish it within this time is disconnected, in ms (default 30000).")
    var partialLineTimeoutMs: Int64?

    @Option(help: "How long completed jobs are kept for inspection before the cleaner deletes them, in ms (default 86400000, a day).")
    var completedRetentionMs: Int64?

    @Option(help: "How long dead, cancelled and expired jobs are kept, in ms (default 2592000000, 30 days).")
    var failedRetentionMs: Int64?

    @Flag(help: "Do not run database migrations on start (run `gantryd migrate` yourself).")
    var noMigrate = false

    func run() async throws {
        let file = try common.fileSettings()
        let logger = bootstrapLogging(common, file)
        exitWhenSupervisorDies(logger: logger)
        raiseOpenFileLimit(logger: logger)
        var configuration = BrokerConfiguration()
        let (host, port) = try parseListenAddress(listen ?? file.listen ?? "127.0.0.1:7440")
        configuration.host = host
        configuration.port = port
        let (httpHost, httpPort) = try parseListenAddress(http ?? file.http ?? "127.0.0.1:7441", flag: "--http")
        if let value = try checkedSetting(maxLineBytes, file.maxLineBytes, "max-line-bytes", atLeast: 1024) { configuration.maxLineBytes = value }
        if let value = try checkedSetting(defaultLeaseMs, file.defaultLeaseMs, "default-lease-ms", atLeast: 1000) {
            configuration.defaultLeaseMs = value
        }
        if let value = drainGraceMs ?? file.drainGraceMs { configuration.drainGrace = .milliseconds(max(0, value)) }
        if let value = try checkedSetting(partialLineTimeoutMs, file.partialLineTimeoutMs, "partial-line-timeout-ms", atLeast: 100) {
            configuration.partialLineTimeout = .milliseconds(value)
        }
        if let value = completedRetentionMs ?? file.completedRetentionMs { configuration.completedRetention = .milliseconds(max(0, value)) }
        if let value = failedRetentionMs ?? file.failedRetentionMs { configuration.failedRetention = .milliseconds(max(0, value)) }
        if let value = try checkedSetting(storageTimeoutMs, file.storageTimeoutMs, "storage-timeout-ms", atLeast: 100) {
            configuration.storageTimeout = .milliseconds(value)
        }
        if let value = try checkedSetting(brokerTimeoutMs, file.brokerTimeoutMs, "broker-timeout-ms", atLeast: 1000) {
            configuration.brokerTimeout = .milliseconds(value)
        }

        configuration.cronSchedules = try file.cronSchedules()
        configuration.queueLimits = try file.queueLimits()
        try security.apply(file, to: &configuration)
        if configuration.tokens.isEmpty {
            logger.warning("no tokens configured: every client that can connect may do everything", metadata: [
                "listen": "\(configuration.host):\(configuration.port)",
            ])
        } else {
            logger.info("clients must authenticate", metadata: [
                "tokens": "\(configuration.tokens.map { "\($0.name) (\($0.role.rawValue))" }.joined(separator: ", "))",
            ])
        }

        try await withDatabase(common, file, logger: logger) { client in
            // Lines tests and scripts can wait for, whatever the log format.
            let broker = BrokerService(configuration: configuration, client: client, migrate: !noMigrate, logger: logger) { address in
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
        let file = try common.fileSettings()
        let logger = bootstrapLogging(common, file)
        try await withDatabase(common, file, logger: logger) { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                let applied = try await Migrator(client: client, logger: logger).migrate()
                print(applied.isEmpty ? "gantry schema is up to date" : "applied migrations \(applied.map(String.init).joined(separator: ", "))")
                group.cancelAll()
            }
        }
    }
}

/// Runs `body` with a client for the configured database, or for an embedded one started (and stopped) here.
func withDatabase(_ common: CommonOptions, _ file: FileSettings, logger: Logger,
                  _ body: (PostgresClient) async throws -> Void) async throws {
    var embedded: EmbeddedPostgres?
    let postgresConfiguration: PostgresClient.Configuration
    if let url = common.databaseURL(file) {
        do { postgresConfiguration = try DatabaseURL.configuration(from: url) } catch { throw ValidationError("\(error)") }
        logger.info("using PostgreSQL", metadata: ["url": "\(DatabaseURL.redacted(url))"])
    } else {
        let database = EmbeddedPostgres(directory: common.dataDirectory(file), logger: logger)
        do { postgresConfiguration = try await database.start() } catch {
            throw ValidationError("Could not start the embedded PostgreSQL: \(String(reflecting: error))")
        }
        embedded = database
    }
    defer { embedded?.stop() }
    let client = PostgresClient(configuration: postgresConfiguration.withGantrySessionSettings(), backgroundLogger: logger)
    try await body(client)
}

func bootstrapLogging(_ common: CommonOptions, _ file: FileSettings) -> Logger {
    let json = (common.logFormat ?? file.logFormat) == "json"
    let level = Logger.Level(rawValue: common.logLevel ?? file.logLevel ?? "info") ?? .info
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
