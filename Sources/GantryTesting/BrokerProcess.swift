import ChildProcesses
import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A real `gantryd` process for end-to-end tests, on a free port, stopped when the test ends.
public final class BrokerProcess: @unchecked Sendable {
    public let process: ChildProcess
    public let host: String
    public let port: Int
    /// The port of its HTTP side (`/live`, `/ready`, `/metrics`).
    public let httpPort: Int
    public let logFile: URL
    private let outputFile: URL
    private let slotOwner: BrokerSlots.Owner

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The `gantryd` built beside the test bundle.
    public static var executable: URL {
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return testBinary.deletingLastPathComponent().appendingPathComponent("gantryd")
    }

    /// Starts `gantryd` with the given arguments (plus `--listen 127.0.0.1:0 --http 127.0.0.1:0`) and waits until
    /// it listens on both.
    public init(arguments: [String], environment: [String: String] = [:]) async throws {
        let slotOwner = BrokerSlots.currentOwner
        await BrokerSlots.shared.acquire(for: slotOwner)
        var started = false
        defer { if !started { BrokerSlots.shared.release(for: slotOwner) } }
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "GANTRY_DATABASE_URL")
        // If this test process dies, the broker follows instead of lingering.
        env["GANTRY_EXIT_WITH_PID"] = String(getpid())
        for (key, value) in environment { env[key] = value }
        // Output goes to files polled with sleeps: a blocking read would hold one of the few threads that
        // all the tests' async work shares.
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("gantryd-\(UUID().uuidString)")
        let logFile = base.appendingPathExtension("log")
        let outputFile = base.appendingPathExtension("out")
        let process = try ChildProcess(
            executable: Self.executable.path,
            arguments: ["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"] + arguments,
            environment: env, standardOutput: .file(outputFile.path), standardError: .file(logFile.path))
        TestDeadline.brokerStarted(process, logFile: logFile.path)
        self.process = process
        self.logFile = logFile
        self.outputFile = outputFile

        // Stdout names each address once the broker accepts connections on it.
        var text = ""
        let deadline = ContinuousClock.now + .seconds(60)
        func port(after prefix: String) -> (host: String, port: Int)? {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }),
                  let address = line.split(separator: " ").last, let colon = address.lastIndex(of: ":"),
                  let port = Int(address[address.index(after: colon)...]) else { return nil }
            return (String(address[..<colon]), port)
        }
        do {
            while port(after: "gantryd listening on ") == nil || port(after: "gantryd http on ") == nil {
                guard process.isRunning, ContinuousClock.now < deadline else {
                    let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
                    let ending = process.termination().map { "it \($0)" } ?? "it was still running; stopped it"
                    throw Failure(description: "gantryd did not start listening (\(ending)): \(log.suffix(3000))")
                }
                try await Task.sleep(for: .milliseconds(20))
                text = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
            }
        } catch {
            // It did not start in time, or the test was cancelled meanwhile: it must not outlive the test.
            if process.isRunning { await process.stop() }
            throw error
        }
        let rpc = port(after: "gantryd listening on ")!
        self.host = rpc.host
        self.port = rpc.port
        self.httpPort = port(after: "gantryd http on ")!.port
        self.slotOwner = slotOwner
        started = true
    }

    /// GETs a path of its HTTP side; returns the status code and body.
    public func get(_ path: String) async throws -> (status: Int, body: String) {
        try await HTTPGet.fetch(host: host, port: httpPort, path: path)
    }

    /// Starts a broker on the given database URL.
    public convenience init(databaseURL: String, extraArguments: [String] = []) async throws {
        try await self.init(arguments: ["--database-url", databaseURL, "--log-level", "info"] + extraArguments)
    }

    public func connect() async throws -> LineClient {
        try await LineClient.connect(host: host, port: port)
    }

    public func signal(_ signal: Int32) {
        process.signal(signal)
    }

    /// Waits for the process to end and returns its exit status (128 + the signal if a signal ended it).
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        guard let ending = await process.wait(timeout: timeout) else {
            throw Failure(description: "gantryd did not exit within \(timeout); its log:\n\(log.suffix(3000))")
        }
        return ending.status
    }

    public var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    deinit {
        BrokerSlots.shared.release(for: slotOwner)
        // Killed and reaped: a broker that outlived its test would hold a slot's worth of CPU and memory.
        process.signal(SIGKILL)
        _ = process.waitBlocking(timeout: .seconds(5))
        try? FileManager.default.removeItem(at: logFile)
        try? FileManager.default.removeItem(at: outputFile)
    }
}

/// Runs `gantryd` to completion (e.g. `gantryd migrate`) and returns its exit status and output.
public func runGantryd(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
    try await runBuiltTool("gantryd", arguments, environment: environment)
}

/// Runs one of this package's executables (built beside the tests) to completion; returns its exit status
/// and what it printed (stdout, then stderr). `stdin`, when given, is what it reads.
public func runBuiltTool(_ name: String, _ arguments: [String], environment: [String: String] = [:],
                         stdin: String? = nil) async throws -> (status: Int32, output: String) {
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "GANTRY_DATABASE_URL")
    env.removeValue(forKey: "GANTRY_URL")
    for (key, value) in environment { env[key] = value }
    let tool = BrokerProcess.executable.deletingLastPathComponent().appendingPathComponent(name).path
    let completed = try await ChildProcess.run(tool, arguments, environment: env, input: stdin, timeout: .seconds(120))
    return (completed.status, completed.output + completed.errors)
}
