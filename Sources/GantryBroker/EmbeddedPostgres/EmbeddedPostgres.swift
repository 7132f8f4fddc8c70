import ChildProcesses
import Foundation
import Logging
import NIOPosix
import PostgresNIO

/// A private PostgreSQL cluster in a directory of ours, reached over a Unix socket: real Postgres with no set-up.
/// `gantryd` runs one when no database URL is given, and the test suite runs one for itself.
///
/// The cluster is created on first start (`initdb`), started with `pg_ctl`, and stopped on `stop()`. A
/// watchdog process stops it too if this process dies without stopping it (kill -9), so no server is left
/// behind. initdb and postgres refuse to run as root, so as root they run as the `postgres` system user.
public final class EmbeddedPostgres: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let directory: URL
    public let database: String
    public let user = "gantry"
    public let port: Int
    let settings: [String: String]
    let logger: Logger

    /// - Parameters:
    ///   - directory: holds the cluster (`pg/`), its socket (`run/`) and its log (`postgres.log`).
    ///   - settings: extra server settings (`-c name=value`), e.g. `fsync=off` for throwaway test clusters.
    public init(directory: URL, database: String = "gantry", port: Int = 5432, settings: [String: String] = [:], logger: Logger) {
        self.directory = directory.standardizedFileURL
        self.database = database
        self.port = port
        self.settings = settings
        self.logger = logger
    }

    var clusterDirectory: URL { directory.appendingPathComponent("pg") }
    var logFile: URL { directory.appendingPathComponent("postgres.log") }

    /// Unix socket paths are limited to about 100 bytes; deep data directories get a socket directory in /tmp.
    public var socketDirectory: String {
        let preferred = directory.appendingPathComponent("run").path
        if preferred.utf8.count < 80 { return preferred }
        var hash: UInt64 = 5381
        for byte in directory.path.utf8 { hash = (hash &* 33) &+ UInt64(byte) }
        return "/tmp/gantry-\(String(hash, radix: 36))"
    }

    static var runningAsRoot: Bool { geteuid() == 0 }

    /// Creates the cluster if needed, starts it, and makes sure the database exists. Returns how to connect.
    public func start() async throws -> PostgresClient.Configuration {
        let binaries = try Self.findBinaries()
        try await prepareDirectories()
        if !FileManager.default.fileExists(atPath: clusterDirectory.appendingPathComponent("PG_VERSION").path) {
            logger.info("creating embedded PostgreSQL cluster", metadata: ["directory": "\(clusterDirectory.path)"])
            try await runAsServerUser(binaries.appendingPathComponent("initdb"), [
                "-D", clusterDirectory.path, "-U", user, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions",
            ] + (settings["fsync"] == "off" ? ["--no-sync"] : []))
        }
        let pgCtl = binaries.appendingPathComponent("pg_ctl")
        if try await runAsServerUser(pgCtl, ["status", "-D", clusterDirectory.path], allowFailure: true) == 0 {
            // Left by a broker that was killed; its watchdog is about to stop it, so start afresh instead.
            logger.info("restarting the embedded PostgreSQL an earlier gantryd left running", metadata: ["directory": "\(clusterDirectory.path)"])
            try await runAsServerUser(pgCtl, ["stop", "-D", clusterDirectory.path, "-m", "fast", "-w"])
        }
        var options = "-c listen_addresses='' -k \(socketDirectory) -p \(port)"
        for (name, value) in settings.sorted(by: { $0.key < $1.key }) { options += " -c \(name)=\(value)" }
        try await runAsServerUser(pgCtl, ["start", "-w", "-t", "60", "-D", clusterDirectory.path, "-l", logFile.path, "-o", options])
        logger.info("started embedded PostgreSQL", metadata: ["socket": "\(socketDirectory)"])
        try await startWatchdog()
        try await createDatabaseIfMissing(database)
        return clientConfiguration(database: database)
    }

    /// Stops the cluster (fast shutdown: open transactions roll back, committed data stays). Blocks while
    /// pg_ctl runs: it is called on the way out, from an atexit handler too.
    public func stop() {
        guard let binaries = try? Self.findBinaries() else { return }
        let (executable, arguments) = serverUserCommand(binaries.appendingPathComponent("pg_ctl"), ["stop", "-D", clusterDirectory.path, "-m", "fast", "-w"])
        _ = try? ChildProcess.runBlocking(executable.path, arguments, mergeErrors: true)
        logger.info("stopped embedded PostgreSQL")
    }

    public func clientConfiguration(database: String) -> PostgresClient.Configuration {
        PostgresClient.Configuration(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: nil, database: database)
    }

    /// A database URL other programs (psql, another broker) can use to reach this cluster.
    public func url(database: String) -> String {
        "postgres://\(user)@localhost:\(port)/\(database)?host=\(socketDirectory)"
    }

    public func createDatabaseIfMissing(_ name: String) async throws {
        let configuration = PostgresConnection.Configuration(
            unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: nil, database: "postgres")
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            let rows = try await connection.query("SELECT count(*) FROM pg_database WHERE datname = \(name)", logger: logger)
            var exists = false
            for try await count in rows.decode(Int64.self) { exists = count > 0 }
            if !exists {
                // CREATE DATABASE takes no bind parameters; the name is checked to be a plain identifier first.
                guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                    throw Failure(description: "database name \(name) must be letters, digits and underscores")
                }
                try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \"\(name)\""), logger: logger)
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    // MARK: processes

    static func findBinaries() throws -> URL {
        if let explicit = ProcessInfo.processInfo.environment["GANTRY_PG_BIN"] {
            return URL(fileURLWithPath: explicit)
        }
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        let usable = versions.compactMap(Int.init).sorted(by: >).map { URL(fileURLWithPath: "\(root)/\($0)/bin") }
            .first { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("postgres").path) }
        guard let usable else {
            throw Failure(description: """
                No PostgreSQL server binaries found (looked in /usr/lib/postgresql/*/bin). Install them \
                (Debian/Ubuntu: apt-get install postgresql), set GANTRY_PG_BIN to their directory, or give \
                --database-url to use an existing PostgreSQL.
                """)
        }
        return usable
    }

    private func prepareDirectories() async throws {
        for path in [directory.path, socketDirectory] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        guard Self.runningAsRoot else { return }
        // The server runs as `postgres`: it must own its directories and be able to reach them.
        for path in [directory.path, socketDirectory] {
            try await run(URL(fileURLWithPath: "/bin/chown"), ["-R", "postgres:postgres", path])
        }
        var ancestor = directory.deletingLastPathComponent()
        while ancestor.path != "/" {
            if let attributes = try? FileManager.default.attributesOfItem(atPath: ancestor.path),
               let permissions = attributes[.posixPermissions] as? Int, permissions & 0o001 == 0 {
                throw Failure(description: "\(ancestor.path) cannot be entered by the postgres user that runs the embedded database; choose a --data-dir outside it (or chmod o+x it).")
            }
            ancestor = ancestor.deletingLastPathComponent()
        }
    }

    /// The command that runs `executable` as the server's user: `postgres` when we are root.
    private func serverUserCommand(_ executable: URL, _ arguments: [String]) -> (URL, [String]) {
        guard Self.runningAsRoot else { return (executable, arguments) }
        // From /, which the postgres user can always enter, whatever our own working directory is.
        return (URL(fileURLWithPath: "/usr/sbin/runuser"), ["-u", "postgres", "--", "/usr/bin/env", "-C", "/", executable.path] + arguments)
    }

    @discardableResult
    private func runAsServerUser(_ executable: URL, _ arguments: [String], allowFailure: Bool = false) async throws -> Int32 {
        let (command, commandArguments) = serverUserCommand(executable, arguments)
        return try await run(command, commandArguments, allowFailure: allowFailure)
    }

    @discardableResult
    private func run(_ executable: URL, _ arguments: [String], allowFailure: Bool = false) async throws -> Int32 {
        let completed = try await ChildProcess.run(executable.path, arguments, mergeErrors: true)
        if completed.status != 0 && !allowFailure {
            throw Failure(description: "\(executable.lastPathComponent) \(arguments.joined(separator: " ")) failed (\(completed.termination)): \(completed.output.suffix(2000)) — see also \(logFile.path)")
        }
        return completed.status
    }

    /// A tiny shell loop that outlives us only to stop the cluster once we are gone. It signals the server it
    /// saw start (SIGINT: fast shutdown), never whatever runs in the directory later, so a broker restarted on
    /// the same directory keeps its new server.
    private func startWatchdog() async throws {
        let pidFile = clusterDirectory.appendingPathComponent("postmaster.pid").path
        guard let pidLine = (try? String(contentsOfFile: pidFile, encoding: .utf8))?.split(separator: "\n").first,
              let serverPID = Int32(pidLine.trimmingCharacters(in: .whitespaces))
        else { throw Failure(description: "PostgreSQL started but \(pidFile) names no process") }
        let script = "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; kill -INT \(serverPID) 2>/dev/null"
        try await ChildProcess.startDetached(shellScript: script)
    }
}
