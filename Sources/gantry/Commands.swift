import ArgumentParser
import Foundation
import GantryClient
import GantryProtocol

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Counts per queue and the broker's state.")
    @OptionGroup var connection: Connection

    func run() async throws {
        try await connection.perform({ try await $0.stats() }) { stats in
            Table.queues(stats.queues) + "\nbroker \(stats.broker.id)  version \(stats.broker.version)  up \(stats.broker.uptimeMs / 1000) s  "
                + "connections \(stats.broker.connections)  workers \(stats.broker.workers)\n"
        }
    }
}

struct QueuesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queues", abstract: "Every queue with its counts, latency and whether it is paused.")
    @OptionGroup var connection: Connection

    func run() async throws {
        try await connection.perform({ try await $0.call(QueuesList.self, NoParams()) }) { Table.queues($0.queues) }
    }
}

struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "job", abstract: "Everything about one job, errors and backtraces included.")
    @OptionGroup var connection: Connection
    @Argument(help: "The job's id.") var id: String

    func run() async throws {
        try await connection.perform({ try await $0.job(id: id) }) { Table.job($0) }
    }
}

struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Bring a dead, expired or cancelled job back (its history kept), or every dead job.")
    @OptionGroup var connection: Connection
    @Argument(help: "The job's id.") var id: String?
    @Flag(help: "Retry every dead job (of --queue, if given), a page at a time.") var allDead = false
    @Option(help: "With --all-dead: only this queue.") var queue: String?

    func validate() throws {
        guard (id != nil) != allDead else { throw ValidationError("Give a job id, or --all-dead (not both).") }
    }

    func run() async throws {
        guard allDead else {
            try await connection.perform({ try await $0.call(JobsRetry.self, JobsGet.Params(id: id!)) }) { "job \($0.id) is \($0.state.rawValue) again\n" }
            return
        }
        try await connection.perform({ client -> BulkRetry in
            // Pages move by cursor, so a job that cannot be retried (it changed meanwhile) is passed, not retried forever.
            var cursor: String?
            var retried = 0
            repeat {
                let page = try await client.call(JobsList.self, JobsList.Params(queue: queue, state: .dead, limit: 100, cursor: cursor))
                for job in page.jobs where (try? await client.call(JobsRetry.self, JobsGet.Params(id: job.id))) != nil { retried += 1 }
                FileHandle.standardError.write(Data("retried \(retried) dead jobs so far\n".utf8))
                cursor = page.nextCursor
            } while cursor != nil
            return BulkRetry(retried: retried)
        }) { "\($0.retried) dead jobs are available again\n" }
    }

    /// What `retry --all-dead` did, for `--json`.
    struct BulkRetry: Encodable {
        let retried: Int
    }
}

struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Stop a queue handing out jobs (on every broker, until resumed).")
    @OptionGroup var connection: Connection
    @Argument(help: "The queue.") var queue: String

    func run() async throws {
        try await connection.perform({ try await $0.call(QueuesPause.self, .init(queue: queue)) }) { "queue \($0.queue) paused\n" }
    }
}

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Let a paused queue hand out jobs again.")
    @OptionGroup var connection: Connection
    @Argument(help: "The queue.") var queue: String

    func run() async throws {
        try await connection.perform({ try await $0.call(QueuesResume.self, .init(queue: queue)) }) { "queue \($0.queue) resumed\n" }
    }
}

struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enqueue", abstract: "Enqueue one job.")
    @OptionGroup var connection: Connection
    @Argument(help: "The job's type, e.g. email.send.") var type: String
    @Option(help: "The job's args as JSON (default []).") var args: String = "[]"
    @Option(help: "The queue (default: default).") var queue: String = ProtocolDefaults.queue
    @Option(help: "1 (most urgent) to 32767 (default 16383).") var priority: Int = ProtocolDefaults.priority
    @Option(help: "Run it no sooner than this many ms from now.") var delayMs: Int64?

    func run() async throws {
        guard let parsed = try? JSONReader.read(Data(args.utf8)) else {
            throw ValidationError("--args must be JSON, such as '{\"to\":\"ana@example.com\"}' (got \(args)).")
        }
        let params = Enqueue.Params(type: type, args: parsed, queue: queue, priority: priority, delayMs: delayMs)
        try await connection.perform({ try await $0.call(Enqueue.self, params) }) { "job \($0.id) \($0.state.rawValue)\n" }
    }
}

struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "jobs", abstract: "List jobs, newest first.")
    @OptionGroup var connection: Connection
    @Option(help: "Only this queue.") var queue: String?
    @Option(help: "Only this state: scheduled, available, reserved, completed, dead, cancelled or expired.") var state: String?
    @Option(help: "Only this job type.") var type: String?
    @Option(help: "Only jobs whose args contain this JSON, such as '{\"user_id\": 7}'.") var args: String?
    @Option(help: "How many (1 to 1000, default 50).") var limit: Int = 50
    @Option(help: "Continue after a previous page (its next_cursor).") var cursor: String?

    func run() async throws {
        var contained: JSONValue?
        if let args {
            guard let parsed = try? JSONReader.read(Data(args.utf8)) else {
                throw ValidationError("--args must be JSON, such as '{\"user_id\": 7}' (got \(args)).")
            }
            contained = parsed
        }
        let parsedState: JobState?
        if let state {
            guard let known = JobState(rawValue: state) else {
                throw ValidationError("--state must be one of \(JobState.allCases.map(\.rawValue).joined(separator: ", ")) (got \(state)).")
            }
            parsedState = known
        } else {
            parsedState = nil
        }
        let params = JobsList.Params(queue: queue, state: parsedState, type: type, args: contained, limit: limit, cursor: cursor)
        try await connection.perform({ try await $0.call(JobsList.self, params) }) { page in
            guard !page.jobs.isEmpty else { return "no jobs\n" }
            var rows = [["ID", "TYPE", "QUEUE", "STATE", "ATTEMPT", "ENQUEUED", "LAST ERROR"]]
            for job in page.jobs {
                rows.append([job.id, job.type, job.queue, job.state.rawValue, "\(job.attempt)/\(job.maxAttempts)",
                             GantryJSON.formatTimestamp(job.enqueuedAt), job.errors.last?.message ?? ""])
            }
            return Table.render(rows) + (page.nextCursor.map { "more: --cursor \($0)\n" } ?? "")
        }
    }
}

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel a job: a waiting one never runs; a running one's worker is told to stop it (never retried).")
    @OptionGroup var connection: Connection
    @Argument(help: "The job's id.") var id: String

    func run() async throws {
        try await connection.perform({ try await $0.call(JobsCancel.self, JobsGet.Params(id: id)) }) { result in
            result.state == .reserved
                ? "job \(result.id) is running: its worker is told to stop it, and it will not be retried\n"
                : "job \(result.id) \(result.state.rawValue)\n"
        }
    }
}

struct DiscardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "discard", abstract: "Delete a waiting or finished job for good.")
    @OptionGroup var connection: Connection
    @Argument(help: "The job's id.") var id: String

    func run() async throws {
        try await connection.perform({ try await $0.call(JobsDiscard.self, JobsGet.Params(id: id)) }) { "job \($0.id) discarded\n" }
    }
}
