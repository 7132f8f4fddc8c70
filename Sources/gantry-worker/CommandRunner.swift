import ChildProcesses
import Foundation
import GantryProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Runs one job's command: the job as JSON on stdin and in `GANTRY_JOB_*` variables, stdout and stderr
/// captured, killed with everything it started if it outlives its timeout or the worker is told to stop.
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
        let input: [String: JSONValue] = [
            "id": .string(job.id), "type": .string(job.type), "args": job.args, "queue": .string(job.queue),
            "attempt": .int(Int64(job.attempt)), "max_attempts": .int(Int64(job.maxAttempts)), "meta": job.meta,
        ]

        // Files rather than pipes: a command that never reads its input, or prints more than a pipe holds,
        // or leaves a child holding its output open, can never stall the worker.
        let files = JobFiles()
        defer { files.remove() }
        try (GantryJSON.makeEncoder().encode(JSONValue.object(input)) + Data("\n".utf8)).write(to: URL(fileURLWithPath: files.stdin))
        // The command leads a process group of its own, so a signal reaches everything it started.
        let child = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", command], environment: environment,
            standardInput: .file(files.stdin), standardOutput: .file(files.stdout), standardError: .file(files.stderr),
            newProcessGroup: true)

        var timedOut = false
        // Cancelled (the worker was told to stop): the command gets SIGTERM, then SIGKILL.
        let ending = await withTaskCancellationHandler {
            if let ending = await child.wait(timeout: timeout) { return ending }
            timedOut = true
            return await child.stop(grace: killGrace)
        } onCancel: { [killGrace] in
            Task.detached { await child.stop(grace: killGrace) }
        }
        return Outcome(
            status: ending.status, stdout: files.read(files.stdout), stderr: files.read(files.stderr), timedOut: timedOut)
    }

    private struct JobFiles {
        let stdin: String
        let stdout: String
        let stderr: String

        init() {
            let base = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-job-\(UUID().uuidString)").path
            (stdin, stdout, stderr) = (base + ".in", base + ".out", base + ".err")
        }

        func read(_ path: String) -> Data { FileManager.default.contents(atPath: path) ?? Data() }

        func remove() { for path in [stdin, stdout, stderr] { unlink(path) } }
    }
}
