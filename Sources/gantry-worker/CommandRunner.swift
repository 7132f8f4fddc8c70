import ChildProcesses
import Foundation
import GantryProtocol

/// Runs one job's command: the job as JSON on stdin (with `operation` for a step, `package` in an execution) and in `GANTRY_JOB_*` variables, stdout and stderr
/// captured, stopped with everything it started if it outlives its timeout or the worker is told to stop.
struct CommandRunner: JobCommandRunner {
    let command: String
    let timeout: Duration
    /// After SIGTERM, how long the command gets to exit before SIGKILL.
    let killGrace: Duration = .seconds(5)

    func run(_ job: ReservedJob) async throws -> ChildProcess.Completed {
        let environment = try Self.environment(for: job)
        var input: JSONObject = [
            "id": .string(job.id), "type": .string(job.type), "args": job.args, "queue": .string(job.queue),
            "attempt": .int(Int64(job.attempt)), "max_attempts": .int(Int64(job.maxAttempts)), "meta": job.meta,
        ]
        // A step of an operation: its operation, place and globals, which the command may steer (StepOutputLines).
        if let operation = job.operation { input["operation"] = try JSONValueEncoder.encode(operation) }
        if let package = job.package { input["package"] = try JSONValueEncoder.encode(package) }
        let stdin = String(decoding: try GantryJSON.makeEncoder().encode(JSONValue.object(input)), as: UTF8.self) + "\n"
        // Cancelled (the worker was told to stop): `run` stops the command, as after a timeout.
        return try await ChildProcess.run(
            "/bin/sh", ["-c", command], environment: environment, input: stdin, newProcessGroup: true,
            timeout: timeout, killGrace: killGrace)
    }

    /// The worker's environment without its token, and the job in `GANTRY_JOB_*` variables.
    static func environment(for job: ReservedJob) throws -> [String: String] {
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
        return environment
    }
}

/// Runs a job as a child process: a `--handler` command or a `--package-dir` file.
protocol JobCommandRunner: Sendable {
    var timeout: Duration { get }
    func run(_ job: ReservedJob) async throws -> ChildProcess.Completed
}
