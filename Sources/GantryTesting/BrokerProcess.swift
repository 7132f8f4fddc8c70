import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A real `gantryd` process for end-to-end tests, on a free port, stopped when the test ends.
public final class BrokerProcess: @unchecked Sendable {
    public let process: Process
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
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = ["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"] + arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "GANTRY_DATABASE_URL")
        // If this test process dies, the broker follows instead of lingering.
        env["GANTRY_EXIT_WITH_PID"] = String(getpid())
        for (key, value) in environment { env[key] = value }
        process.environment = env
        // Output goes to files polled with sleeps: a blocking read would hold one of the few threads that
        // all the tests' async work shares.
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("gantryd-\(UUID().uuidString)")
        let logFile = base.appendingPathExtension("log")
        let outputFile = base.appendingPathExtension("out")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: outputFile)
        process.standardError = try FileHandle(forWritingTo: logFile)
        process.standardInput = FileHandle.nullDevice
        try process.run()
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
        while port(after: "gantryd listening on ") == nil || port(after: "gantryd http on ") == nil {
            guard process.isRunning, ContinuousClock.now < deadline else {
                let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
                process.terminate()
                throw Failure(description: "gantryd did not start listening: \(log.suffix(3000))")
            }
            try await Task.sleep(for: .milliseconds(20))
            text = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
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
        kill(process.processIdentifier, signal)
    }

    /// Waits for the process to end and returns its exit status.
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { throw Failure(description: "gantryd did not exit within \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    public var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    deinit {
        BrokerSlots.shared.release(for: slotOwner)
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
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
    let process = Process()
    process.executableURL = BrokerProcess.executable.deletingLastPathComponent().appendingPathComponent(name)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "GANTRY_DATABASE_URL")
    env.removeValue(forKey: "GANTRY_URL")
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
    let (outFile, errFile) = (base.appendingPathExtension("out"), base.appendingPathExtension("err"))
    for file in [outFile, errFile] { _ = FileManager.default.createFile(atPath: file.path, contents: nil) }
    defer { for file in [outFile, errFile] { try? FileManager.default.removeItem(at: file) } }
    process.standardOutput = try FileHandle(forWritingTo: outFile)
    process.standardError = try FileHandle(forWritingTo: errFile)
    if let stdin {
        let inFile = base.appendingPathExtension("in")
        try Data(stdin.utf8).write(to: inFile)
        process.standardInput = try FileHandle(forReadingFrom: inFile)
    } else {
        process.standardInput = FileHandle.nullDevice
    }
    try process.run()
    while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
    let output = ((try? String(contentsOf: outFile, encoding: .utf8)) ?? "") + ((try? String(contentsOf: errFile, encoding: .utf8)) ?? "")
    return (process.terminationStatus, output)
}
