import ArgumentParser
import ChildProcesses
import Foundation
import GantryClient
import GantryProtocol
import GantrySettings
import Logging
import ServiceLifecycle
import UnixSignals

@main
struct GantryWorkerCommand: AsyncParsableCommand {
    /// A command that exits with this code has failed for good: the job goes to the dead set, not back for a retry.
    static let doNotRetryExitCode: Int32 = 65

    static let configuration = CommandConfiguration(
        commandName: "gantry-worker",
        abstract: "Work Gantry jobs by running a command per job, in any language.",
        discussion: """
            For each job it runs the command of the job's type with /bin/sh -c. The job arrives as one line of JSON \
            on stdin ({"id","type","args","queue","attempt","max_attempts","meta"}) and in the environment \
            (GANTRY_JOB_ID, GANTRY_JOB_TYPE, GANTRY_JOB_QUEUE, GANTRY_JOB_ATTEMPT, GANTRY_JOB_MAX_ATTEMPTS, \
            GANTRY_JOB_ARGS, GANTRY_JOB_META).

            How the command ends decides the job:
              exit 0      acked; stdout, when it is JSON, is kept as the result
              exit 65     failed for good (EX_DATAERR): dead at once, no retry
              other exit  failed: retried with backoff while attempts remain,
                          with the tail of stderr as the error
              too slow    past --timeout-ms the command and what it started
                          get SIGTERM, then SIGKILL 5 s later; failed

            Example:
              gantry-worker --broker 127.0.0.1:7440 --queue mail --concurrency 8 \\
                --handler email.send='python3 send.py'

            Package steps from a folder (--package-dir): a step's type names its file, run with the package's \
            name, config, the operation's globals and the job's args as JSON on stdin and as its first argument \
            ({"package_name","config","globals","args"}); *.py with python3, *.sh with sh, *.sql with psql \
            against --sql-url (the JSON in the variable input), any other executable as it is. A stdout line \
            {"set": {...}} updates the globals:
              gantry-worker --queue reports --package-dir ./steps --sql-url postgres://localhost/app

            The same from a YAML file (--config worker.yml):
              broker: 127.0.0.1:7440
              queues: [mail]
              concurrency: 8
              timeout_ms: 600000
              handlers:
                email.send: python3 send.py

            SIGTERM or SIGINT: stop taking jobs, let running commands finish (up to --drain-timeout-ms, then stop \
            them and hand their jobs back), exit. --health-port PORT serves GET /live and GET /ready for probes.

            Settings: each a flag, an environment variable (in brackets) and a config file key (the flag's name \
            with underscores; queues: and handlers: for --queue and --handler); flags win over the environment, \
            which wins over the file.

            \(WorkerSettings.table.helpText(defaults: WorkerSettings()))
            """)

    @Option(help: "A YAML file of settings: the keys are the flags' names with underscores (broker, queues, concurrency, timeout_ms, log_level) and handlers: (a map of type to command); flags override it.")
    var config: String?

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var settingFlags: [String] = []

    func run() async throws {
        let settings: WorkerSettings
        do {
            settings = try WorkerSettings.resolve(flags: settingFlags, configFile: config, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.description)
        }
        let level = Logger.Level(rawValue: settings.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "gantry-worker")
        let (url, queues, concurrency, timeout) = (settings.broker, settings.queues, settings.concurrency, settings.timeout)

        let worker: Worker
        do {
            worker = try Worker(
                url: url, queues: queues, concurrency: concurrency, token: ProcessInfo.processInfo.environment["GANTRY_TOKEN"],
                tls: ClientTLS.fromEnvironment(), healthPort: settings.healthPort, drainTimeout: settings.drainTimeout, logger: logger)
        } catch {
            throw ValidationError("\(error)")
        }
        if let folder = settings.packageDir {
            let directory: PackageDirectory
            do { directory = try PackageDirectory.scan(folder) } catch { throw ValidationError("\(error)") }
            let runner = PackageStepRunner(directory: directory, sqlURL: settings.sqlURL, timeout: timeout)
            // A --handler for the same type wins: it was named on purpose.
            for type in directory.types.sorted() where settings.handlers[type] == nil {
                worker.register(type, outcome: { job in try await Self.perform(job, with: runner, logger: logger) })
                logger.info("package step", metadata: ["type": "\(type)", "folder": "\(folder)"])
            }
        }
        for (type, command) in settings.handlers.sorted(by: { $0.key < $1.key }) {
            let runner = CommandRunner(command: command, timeout: timeout)
            worker.register(type, outcome: { job in try await Self.perform(job, with: runner, logger: logger) })
            logger.info("handler", metadata: ["type": "\(type)", "command": "\(command)"])
        }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// Runs the command and turns how it ended into the job's outcome.
    static func perform(_ job: ReservedJob, with runner: some JobCommandRunner, logger: Logger) async throws -> StepOutcome {
        let started = ContinuousClock.now
        let outcome: ChildProcess.Completed
        do { outcome = try await runner.run(job) } catch let missing as PackageStepRunner.NoFile {
            // The same worker would not find it on a retry either.
            throw CommandGaveUp(message: missing.description, stderr: "")
        }
        let took = ContinuousClock.now - started
        let stderrTail = String(outcome.errors.suffix(4096)).trimmingCharacters(in: .whitespacesAndNewlines)
        logger.info("ran", metadata: [
            "id": "\(job.id)", "type": "\(job.type)", "attempt": "\(job.attempt)", "exit": "\(outcome.status)",
            "timed_out": "\(outcome.timedOut)", "took": "\(took)",
        ])
        if outcome.timedOut {
            throw CommandFailed(message: "timed out after \(runner.timeout) and was killed", stderr: stderrTail)
        }
        switch outcome.status {
        case 0:
            // A step's command steers its operation with lines like {"set": {...}} and {"jump_to": "refund"}.
            let lines = job.operation.map { _ in StepOutputLines(outcome.output) }
            let text = (lines?.rest ?? outcome.output).trimmingCharacters(in: .whitespacesAndNewlines)
            return StepOutcome(set: lines?.set, jumpTo: lines?.jumpTo, result: text.isEmpty ? nil : try? JSONReader.read(Data(text.utf8)))
        case doNotRetryExitCode:
            throw CommandGaveUp(message: "exited \(outcome.status) (do not retry)", stderr: stderrTail)
        default:
            throw CommandFailed(message: "exited \(outcome.status)", stderr: stderrTail)
        }
    }
}

/// The command failed; the job is retried while attempts remain.
struct CommandFailed: Error, CustomStringConvertible, CustomDebugStringConvertible {
    let message: String
    let stderr: String
    var description: String { stderr.isEmpty ? message : "\(message): \(stderr.split(separator: "\n").last ?? "")" }
    var debugDescription: String { stderr.isEmpty ? message : stderr }
}

/// The command asked not to be retried (exit 65).
struct CommandGaveUp: PermanentError, CustomStringConvertible, CustomDebugStringConvertible {
    let message: String
    let stderr: String
    var description: String { stderr.isEmpty ? message : "\(message): \(stderr.split(separator: "\n").last ?? "")" }
    var debugDescription: String { stderr.isEmpty ? message : stderr }
}
