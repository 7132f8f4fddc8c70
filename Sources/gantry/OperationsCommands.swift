import ArgumentParser
import Foundation
import GantryClient
import GantryProtocol

struct OperationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operations", abstract: "List operations, show one step by step, retry one from its failed step, or cancel one.",
        subcommands: [OperationsListCommand.self, OperationsShowCommand.self, OperationsRetryCommand.self, OperationsCancelCommand.self],
        defaultSubcommand: OperationsListCommand.self)
}

struct OperationsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Operations, newest first.")
    @OptionGroup var connection: Connection
    @Option(help: "Only operations of this name.") var name: String?
    @Option(help: "Only operations in this state: running, completed, failed, cancelled.") var state: String?
    @Option(help: "Only operations whose globals contain this JSON object, like '{\"user_id\": 7}'.") var globals: String?
    @Option(help: "How many (1 to 1000).") var limit = 50

    func run() async throws {
        let states = OperationState.allCases.map(\.rawValue).joined(separator: ", ")
        let wanted = try state.map { text in
            guard let state = OperationState(rawValue: text) else { throw ValidationError("--state must be one of \(states).") }
            return state
        }
        let filter = try globals.map { text in
            guard let value = try? GantryJSON.makeDecoder().decode(JSONValue.self, from: Data(text.utf8)), case .object = value else {
                throw ValidationError("--globals must be a JSON object, like '{\"user_id\": 7}'.")
            }
            return value
        }
        let params = OperationsList.Params(name: name, state: wanted, globals: filter, limit: limit)
        try await connection.perform({ try await $0.listOperations(params) }) { result in
            guard !result.operations.isEmpty else { return "no operations\n" }
            var rows = [["ID", "NAME", "STATE", "AT", "PATH", "STARTED", "GLOBALS"]]
            for operation in result.operations {
                rows.append([operation.id, operation.name, operation.state.rawValue, "\(operation.branch)[\(operation.index)]",
                             operation.path.joined(separator: " > "), Table.ago(operation.createdAt), Table.compact(operation.globals)])
            }
            return Table.render(rows)
        }
    }
}

struct OperationsShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One operation: its globals and every step, with errors.")
    @OptionGroup var connection: Connection
    @Argument(help: "The operation's id.") var id: String

    func run() async throws {
        try await connection.perform({ try await $0.operation(id: id) }) { operation in
            var text = "operation \(operation.id) \(operation.name): \(operation.state.rawValue)"
            if let key = operation.key { text += " (key \(key))" }
            text += "\npath     \(operation.path.joined(separator: " > "))\nglobals  \(Table.compact(operation.globals))\n"
            if let message = operation.error?["message"]?.stringValue {
                text += "failed   at \(operation.error?["branch"]?.stringValue ?? "?")[\(operation.error?["index"]?.intValue ?? 0)]: \(message)\n"
            }
            var rows = [["BRANCH", "#", "STEP", "STATE", "JOB", "ATTEMPTS", "TOOK", "ERROR"]]
            for step in operation.steps ?? [] {
                let place = step.member.map { "\(step.index).\($0)" } ?? String(step.index)
                rows.append([step.branch, place, step.type, step.state.rawValue + (step.retried == true ? " (retried)" : ""),
                             step.jobID ?? "", step.jobID == nil ? "" : String(step.attempts), step.durationMs.map(Table.milliseconds) ?? "",
                             step.error?["message"]?.stringValue ?? ""])
            }
            return text + "\n" + Table.render(rows)
        }
    }
}

struct OperationsRetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Resume a failed or cancelled operation at the step that did not complete (completed steps do not run again).")
    @OptionGroup var connection: Connection
    @Argument(help: "The operation's id.") var id: String
    @Flag(help: "Run it again from the first step of main, with the globals it started with.") var fromStart = false

    func run() async throws {
        try await connection.perform({ try await $0.retryOperation(id: id, from: fromStart ? .start : .failed) }) { result in
            "operation \(result.id) \(result.state.rawValue): step job\(result.jobIDs.count == 1 ? "" : "s") \(result.jobIDs.joined(separator: ", ")) enqueued\n"
        }
    }
}

struct OperationsCancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel an operation: its waiting steps are cancelled, its running ones asked to stop.")
    @OptionGroup var connection: Connection
    @Argument(help: "The operation's id.") var id: String

    func run() async throws {
        try await connection.perform({ try await $0.cancelOperation(id: id) }) { result in
            "operation \(result.id) cancelled: \(result.cancelled) waiting step\(result.cancelled == 1 ? "" : "s") cancelled, \(result.stopping) running asked to stop\n"
        }
    }
}
