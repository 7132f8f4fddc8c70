import ArgumentParser
import Foundation
import GantryClient
import GantryProtocol

struct PackagesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "packages", abstract: "List packages, run one by hand, show its executions, or save one.",
        subcommands: [PackagesListCommand.self, PackagesRunCommand.self, PackagesExecutionsCommand.self, PackagesSaveCommand.self],
        defaultSubcommand: PackagesListCommand.self)
}

struct PackagesListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Every package: its steps, triggers and config.")
    @OptionGroup var connection: Connection

    func run() async throws {
        try await connection.perform({ try await $0.call(PackagesList.self, NoParams()) }) { result in
            guard !result.packages.isEmpty else { return "no packages\n" }
            var rows = [["NAME", "STEPS", "TRIGGERS", "NEXT RUN", "STATE", "CONFIG"]]
            for package in result.packages {
                rows.append([package.name, package.steps.summary, package.triggers.summary,
                             package.nextRunAt.map(GantryJSON.formatTimestamp) ?? "", package.active ? "active" : "inactive",
                             Table.compact(package.config)])
            }
            return Table.render(rows)
        }
    }
}

struct PackagesRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Start an execution of a package by hand.")
    @OptionGroup var connection: Connection
    @Argument(help: "The package's name.") var name: String
    @Option(help: "Config keys to override for this run, as a JSON object ('{\"region\": \"us\"}').") var config: String?

    func run() async throws {
        var overrides: JSONValue?
        if let config {
            guard let value = try? GantryJSON.makeDecoder().decode(JSONValue.self, from: Data(config.utf8)), case .object = value else {
                throw ValidationError("--config must be a JSON object, like '{\"region\": \"us\"}'.")
            }
            overrides = value
        }
        let params = PackagesRun.Params(name: name, config: overrides)
        try await connection.perform({ try await $0.call(PackagesRun.self, params) }) { result in
            "package \(result.package) started: execution \(result.id) (gantry packages executions \(result.package))\n"
        }
    }
}

struct PackagesExecutionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "executions", abstract: "A package's executions, newest first, each step's state.")
    @OptionGroup var connection: Connection
    @Argument(help: "The package's name.") var name: String
    @Option(help: "How many (1 to 100).") var limit = 20

    func run() async throws {
        let params = PackagesExecutions.Params(name: name, limit: limit)
        try await connection.perform({ try await $0.call(PackagesExecutions.self, params) }) { result in
            guard !result.executions.isEmpty else { return "no executions of \(name)\n" }
            var rows = [["ID", "STATE", "BY", "STARTED", "STEPS", "SAVED AS"]]
            for execution in result.executions {
                let steps = execution.steps.map { "\($0.type) \($0.state.rawValue)" }.joined(separator: ", ")
                rows.append([execution.id, execution.state.rawValue, execution.trigger.rawValue, Table.ago(execution.createdAt), steps,
                             execution.saved?.name ?? ""])
            }
            return Table.render(rows)
        }
    }
}

struct PackagesSaveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "save", abstract: "Keep an execution for good under a name (cleanup never removes it).")
    @OptionGroup var connection: Connection
    @Argument(help: "The execution's id.") var id: String
    @Argument(help: "A name, unique within its package.") var name: String
    @Option(help: "A note on why it is kept.") var description: String?

    func run() async throws {
        let params = ExecutionsSave.Params(id: id, name: name, description: description)
        try await connection.perform({ try await $0.call(ExecutionsSave.self, params) }) { execution in
            "execution \(execution.id) of \(execution.package) saved as \(execution.saved?.name ?? name)\n"
        }
    }
}
