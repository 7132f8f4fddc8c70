import ArgumentParser
import Foundation
import GantryClient
import GantryProtocol

struct CronCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cron", abstract: "List cron schedules, or trigger, pause, resume or delete one.",
        subcommands: [CronListCommand.self, CronActionCommand<Trigger>.self, CronActionCommand<Pause>.self,
                      CronActionCommand<Resume>.self, CronActionCommand<Delete>.self],
        defaultSubcommand: CronListCommand.self)

    enum Trigger: CronAction {
        typealias Method = CronTrigger
        static let name = "trigger"
        static let abstract = "Enqueue one run of a schedule now (paused or not); its next tick stays where it is."
        static func describe(_ result: CronTrigger.Result) -> String { "schedule \(result.schedule.name) triggered: job \(result.id)\n" }
    }

    enum Pause: CronAction {
        typealias Method = CronPause
        static let name = "pause"
        static let abstract = "Stop a schedule firing (kept across restarts); ticks meanwhile are skipped."
        static func describe(_ result: CronPause.Result) -> String { "schedule \(result.schedule.name) paused\n" }
    }

    enum Resume: CronAction {
        typealias Method = CronResume
        static let name = "resume"
        static let abstract = "Let a paused schedule fire again from its next tick."
        static func describe(_ result: CronPause.Result) -> String {
            "schedule \(result.schedule.name) resumed; next run \(result.schedule.nextRunAt.map(GantryJSON.formatTimestamp) ?? "never")\n"
        }
    }

    enum Delete: CronAction {
        typealias Method = CronDelete
        static let name = "delete"
        static let abstract = "Remove a schedule (a config file's schedule returns when its broker restarts, unless removed from the file)."
        static func describe(_ result: CronDelete.Result) -> String { "schedule deleted\n" }
    }
}

struct CronListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Every schedule with its next and last run.")
    @OptionGroup var connection: Connection

    func run() async throws {
        try await connection.perform({ try await $0.call(CronList.self, NoParams()) }) { result in
            guard !result.schedules.isEmpty else { return "no cron schedules\n" }
            var rows = [["NAME", "CRON", "TIMEZONE", "TYPE", "QUEUE", "STATE", "NEXT RUN", "LAST RUN", "LAST JOB", "FROM"]]
            for schedule in result.schedules {
                rows.append([schedule.name, schedule.cron, schedule.timezone, schedule.type, schedule.queue,
                             schedule.paused ? "paused" : "active",
                             schedule.nextRunAt.map(GantryJSON.formatTimestamp) ?? "-",
                             schedule.lastRunAt.map { Table.ago($0) } ?? "never", schedule.lastJobID ?? "-", schedule.source.rawValue])
            }
            return Table.render(rows)
        }
    }
}

/// What the commands naming one schedule differ in.
protocol CronAction {
    associatedtype Method: RPCMethod where Method.Params == CronNameParams
    static var name: String { get }
    static var abstract: String { get }
    static func describe(_ result: Method.Result) -> String
}

struct CronActionCommand<Action: CronAction>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(commandName: Action.name, abstract: Action.abstract) }
    @OptionGroup var connection: Connection
    @Argument(help: "The schedule's name (see gantry cron).") var name: String

    func run() async throws {
        try await connection.perform({ try await $0.call(Action.Method.self, CronNameParams(name: name)) }, table: Action.describe)
    }
}

struct LimitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limit", abstract: "Set a queue's limits across every worker and broker (what is not given is removed).",
        discussion: "Example: gantry limit mail --concurrency 5 --rate 100/1m. gantry limit mail alone removes both limits.")
    @OptionGroup var connection: Connection
    @Argument(help: "The queue.") var queue: String
    @Option(help: "At most this many of the queue's jobs running at once.") var concurrency: Int?
    @Option(help: "At most N starts per period, as N/PERIOD with a unit: 10/1s, 100/1m, 5000/1h.") var rate: String?

    func run() async throws {
        let rateLimit = try rate.map(Self.parseRate)
        let params = QueuesConfigure.Params(queue: queue, concurrency: concurrency, rateLimit: rateLimit)
        try await connection.perform({ try await $0.call(QueuesConfigure.self, params) }) { result in
            "queue \(result.queue): \(Table.limits(concurrency: result.concurrency, rateLimit: result.rateLimit) ?? "no limits")\n"
        }
    }

    static func parseRate(_ text: String) throws -> RateLimit {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let limit = Int(parts[0]), limit > 0,
              let period = try? CleanupCommand.milliseconds(String(parts[1])), period > 0 else {
            throw ValidationError("--rate is N/PERIOD, such as 10/1s or 100/1m (got \(text)).")
        }
        return RateLimit(limit: limit, periodMs: period)
    }
}
