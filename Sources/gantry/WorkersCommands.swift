import ArgumentParser
import Foundation
import GantryClient
import GantryProtocol

struct WorkersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workers", abstract: "List connected workers (on every broker), or tell them to quiet or stop.",
        subcommands: [WorkersListCommand.self, WorkersSteerCommand<Quiet>.self, WorkersSteerCommand<Stop>.self],
        defaultSubcommand: WorkersListCommand.self)
}

struct WorkersListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Every connected worker, oldest connection first.")
    @OptionGroup var connection: Connection

    func run() async throws {
        try await connection.perform({ try await $0.call(WorkersList.self, NoParams()) }) { result in
            guard !result.workers.isEmpty else { return "no workers connected\n" }
            var rows = [["WORKER", "SESSION", "PEER", "QUEUES", "CONCURRENCY", "HELD", "STATE", "LAST SEEN", "HANDLERS"]]
            for worker in result.workers {
                rows.append([worker.id, worker.sessionID, worker.peer, worker.queues.joined(separator: ","), String(worker.concurrency),
                             String(worker.jobsHeld), worker.state.rawValue, Table.ago(worker.lastSeenAt), worker.handlers.joined(separator: ",")])
            }
            return Table.render(rows)
        }
    }
}

/// What `workers quiet` and `workers stop` differ in.
protocol WorkerOrder {
    associatedtype Method: RPCMethod where Method.Params == WorkersQuiet.Params, Method.Result == WorkersQuiet.Result
    static var name: String { get }
    static var abstract: String { get }
    static var done: String { get }
}

enum Quiet: WorkerOrder {
    typealias Method = WorkersQuiet
    static let name = "quiet"
    static let abstract = "Tell workers to finish what they hold and take nothing new (before a deploy)."
    static let done = "told to quiet"
}

enum Stop: WorkerOrder {
    typealias Method = WorkersStop
    static let name = "stop"
    static let abstract = "Tell workers to hand back what they hold and exit; the broker disconnects those that do not."
    static let done = "told to stop"
}

struct WorkersSteerCommand<Order: WorkerOrder>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(commandName: Order.name, abstract: Order.abstract) }
    @OptionGroup var connection: Connection
    @Argument(help: "A worker id or session id (see gantry workers).") var id: String?
    @Flag(help: "Every connected worker, on every broker.") var all = false

    func validate() throws {
        guard (id != nil) != all else { throw ValidationError("Give a worker id or session id, or --all (not both).") }
    }

    func run() async throws {
        try await connection.perform({ try await $0.call(Order.Method.self, WorkersQuiet.Params(id: id, all: all)) }) { result in
            "\(result.workers) worker\(result.workers == 1 ? "" : "s") \(Order.done)\n"
        }
    }
}
