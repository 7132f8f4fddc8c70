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
    static let configuration = CommandConfiguration(commandName: "retry", abstract: "Bring a dead, expired or cancelled job back, its history kept.")
    @OptionGroup var connection: Connection
    @Argument(help: "The job's id.") var id: String

    func run() async throws {
        try await connection.perform({ try await $0.call(JobsRetry.self, JobsGet.Params(id: id)) }) { "job \($0.id) is \($0.state.rawValue) again\n" }
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
        guard let parsed = try? JSONDecoder().decode(JSONValue.self, from: Data(args.utf8)) else {
            throw ValidationError("--args must be JSON, such as '{\"to\":\"ana@example.com\"}' (got \(args)).")
        }
        let params = Enqueue.Params(type: type, args: parsed, queue: queue, priority: priority, delayMs: delayMs)
        try await connection.perform({ try await $0.call(Enqueue.self, params) }) { "job \($0.id) \($0.state.rawValue)\n" }
    }
}
