import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension ChildProcess {
    /// What a command that ran to completion left.
    public struct Completed: Sendable {
        public var termination: Termination
        /// Its standard output, or standard output and error together when they were merged.
        public var output: String
        /// Its standard error (empty when merged into `output`).
        public var errors: String
        /// Whether it outlived its timeout and was stopped.
        public var timedOut = false

        public var status: Int32 { termination.status }
    }

    /// Runs a command to completion and returns how it ended and what it printed. Input and output are files,
    /// not pipes, so a command that never reads its input, prints more than a pipe holds, or leaves a child
    /// holding its output open never stalls us, and nothing has to read while we wait.
    /// - Parameters:
    ///   - input: written to a file the command reads as its standard input; nil gives it /dev/null.
    ///   - mergeErrors: standard error goes into `output`, interleaved as printed.
    ///   - newProcessGroup: the command leads a process group of its own, so stopping it stops everything it
    ///     started too.
    ///   - timeout: past it the command is stopped (SIGTERM, then SIGKILL after `killGrace`); nil waits for ever.
    /// Cancelling the calling task stops the command the same way; `run` returns once it has ended.
    public static func run(
        _ executable: String, _ arguments: [String] = [], environment: [String: String]? = nil,
        workingDirectory: String? = nil, input: String? = nil, mergeErrors: Bool = false,
        newProcessGroup: Bool = false, timeout: Duration? = nil, killGrace: Duration = .seconds(5)
    ) async throws -> Completed {
        let files = try CaptureFiles(input: input)
        defer { files.remove() }
        let child = try ChildProcess(
            executable: executable, arguments: arguments, environment: environment, workingDirectory: workingDirectory,
            standardInput: files.input.map { .file($0) } ?? .null, standardOutput: .file(files.output),
            standardError: mergeErrors ? .standardOutput : .file(files.errors), newProcessGroup: newProcessGroup)
        return await withTaskCancellationHandler {
            guard let timeout else { return files.read(await child.wait()) }
            if let ending = await child.wait(timeout: timeout) { return files.read(ending) }
            var completed = files.read(await child.stop(grace: killGrace))
            completed.timedOut = true
            return completed
        } onCancel: {
            Task.detached { await child.stop(grace: killGrace) }
        }
    }

    /// `run` for code that cannot await (an atexit handler): blocks this thread while the command runs.
    public static func runBlocking(
        _ executable: String, _ arguments: [String] = [], environment: [String: String]? = nil,
        mergeErrors: Bool = false
    ) throws -> Completed {
        let files = try CaptureFiles(input: nil)
        defer { files.remove() }
        let child = try ChildProcess(
            executable: executable, arguments: arguments, environment: environment,
            standardOutput: .file(files.output), standardError: mergeErrors ? .standardOutput : .file(files.errors))
        return files.read(child.waitBlocking()!)
    }

    /// Starts a command that outlives us (a watchdog): a shell starts it in the background and exits at once,
    /// and we reap that shell, so the command belongs to init and never lingers as our zombie. It runs in a
    /// process group of its own, so a signal to ours (a supervisor stopping us and our children) spares it.
    public static func startDetached(shellScript script: String) async throws {
        let launcher = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", "(\(script)) </dev/null >/dev/null 2>&1 &"], newProcessGroup: true)
        let ending = await launcher.wait()
        guard ending == .exited(0) else {
            throw Failure(description: "could not start a background command: the shell \(ending)")
        }
    }

    /// Temporary files for a command's input and output, removed after.
    private struct CaptureFiles {
        let input: String?
        let output: String
        let errors: String

        init(input text: String?) throws {
            let base = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-child-\(UUID().uuidString)").path
            output = base + ".out"
            errors = base + ".err"
            if let text {
                input = base + ".in"
                try Data(text.utf8).write(to: URL(fileURLWithPath: base + ".in"))
            } else {
                input = nil
            }
        }

        func read(_ termination: Termination) -> Completed {
            Completed(
                termination: termination,
                output: (try? String(contentsOfFile: output, encoding: .utf8)) ?? "",
                errors: (try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")
        }

        func remove() {
            for path in [input, output, errors].compactMap({ $0 }) { unlink(path) }
        }
    }
}
