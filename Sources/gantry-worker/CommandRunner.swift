import Foundation
import GantryProtocol
import Synchronization

/// Runs one job's command: the job as JSON on stdin and in `GANTRY_JOB_*` variables, stdout and stderr
/// captured, killed if it outlives its timeout.
struct CommandRunner: Sendable {
    struct Outcome: Sendable {
        var status: Int32
        var stdout: Data
        var stderr: Data
        var timedOut: Bool
    }

    let command: String
    let timeout: Duration
    /// After SIGTERM, how long the command gets to exit before SIGKILL.
    let killGrace: Duration = .seconds(5)

    func run(_ job: ReservedJob) async throws -> Outcome {
        let process = Process()
        // Foundation starts it as the leader of a process group of its own, so a timeout stops the command and
        // everything it started by signalling the group.
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        var environment = ProcessInfo.processInfo.environment
        // The worker's token is for talking to the broker, not for the commands it runs.
        environment.removeValue(forKey: "GANTRY_TOKEN")
        environment["GANTRY_JOB_ID"] = job.id
        environment["GANTRY_JOB_TYPE"] = job.type
        environment["GANTRY_JOB_QUEUE"] = job.queue
        environment["GANTRY_JOB_ATTEMPT"] = String(job.attempt)
        environment["GANTRY_JOB_MAX_ATTEMPTS"] = String(job.maxAttempts)
        environment["GANTRY_JOB_ARGS"] = String(decoding: try GantryJSON.makeEncoder().encode(job.args), as: UTF8.self)
        environment["GANTRY_JOB_META"] = String(decoding: try GantryJSON.makeEncoder().encode(job.meta), as: UTF8.self)
        process.environment = environment
        let (stdin, stdout, stderr) = (Pipe(), Pipe(), Pipe())
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr

        let exited = AsyncStream.makeStream(of: Int32.self)
        process.terminationHandler = { exited.continuation.yield($0.terminationStatus); exited.continuation.finish() }
        try process.run()

        // Pipes are drained on threads of their own so a chatty command never blocks on a full pipe.
        async let output = Self.readAll(stdout.fileHandleForReading)
        async let errors = Self.readAll(stderr.fileHandleForReading)
        let input: [String: JSONValue] = [
            "id": .string(job.id), "type": .string(job.type), "args": job.args, "queue": .string(job.queue),
            "attempt": .int(Int64(job.attempt)), "max_attempts": .int(Int64(job.maxAttempts)), "meta": job.meta,
        ]
        try? stdin.fileHandleForWriting.write(contentsOf: GantryJSON.makeEncoder().encode(JSONValue.object(input)) + Data("\n".utf8))
        try? stdin.fileHandleForWriting.close()

        let timedOut = Atomic<Bool>(false)
        let pid = process.processIdentifier
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            timedOut.store(true, ordering: .relaxed)
            kill(-pid, SIGTERM)
            try await Task.sleep(for: killGrace)
            kill(-pid, SIGKILL)
        }
        var status: Int32 = -1
        // Cancelled (the worker was told to stop): the command and everything it started get SIGTERM, then SIGKILL.
        await withTaskCancellationHandler {
            for await code in exited.stream { status = code }
        } onCancel: { [killGrace] in
            kill(-pid, SIGTERM)
            Task.detached {
                try? await Task.sleep(for: killGrace)
                kill(-pid, SIGKILL)
            }
        }
        watchdog.cancel()
        return Outcome(status: status, stdout: await output, stderr: await errors, timedOut: timedOut.load(ordering: .relaxed))
    }

    private static func readAll(_ handle: FileHandle) async -> Data {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: (try? handle.readToEnd()) ?? Data()) }.start()
        }
    }
}
