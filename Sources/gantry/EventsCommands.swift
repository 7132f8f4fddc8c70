import ArgumentParser
import Foundation
import GantryClient
import GantryProtocol

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Publish an event, list events, show what one triggered, or replay one.",
        subcommands: [EventsListCommand.self, EventsShowCommand.self, EventsPublishCommand.self, EventsReplayCommand.self,
                      SubscriptionsListCommand.self],
        defaultSubcommand: EventsListCommand.self)
}

/// `{"job_id": …}` or `{"operation_id": …}` as people read it.
private func describe(_ trigger: EventTrigger) -> String {
    let what = trigger.jobID.map { "job \($0)" } ?? trigger.operationID.map { "operation \($0)" } ?? trigger.skipped.map { "nothing: \($0)" } ?? "?"
    return "\(trigger.source) → \(what)" + (trigger.state.map { " (\($0))" } ?? "")
}

struct EventsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Events, newest first, with what each triggered.")
    @OptionGroup var connection: Connection
    @Option(help: "Only this type, or every type under a prefix (order.*).") var type: String?
    @Option(help: "How many (1 to 1000).") var limit = 50

    func run() async throws {
        let params = EventsList.Params(type: type, limit: limit)
        try await connection.perform({ try await $0.call(EventsList.self, params) }) { result in
            guard !result.events.isEmpty else { return "no events\n" }
            var rows = [["ID", "TYPE", "PUBLISHED", "KEY", "TRIGGERED", "PAYLOAD"]]
            for event in result.events {
                rows.append([event.id, event.type, Table.ago(event.publishedAt), event.key ?? "",
                             event.triggered.isEmpty ? "nothing" : event.triggered.map(describe).joined(separator: ", "),
                             Table.compact(event.payload)])
            }
            return Table.render(rows)
        }
    }
}

struct EventsShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One event: its payload and the state of everything it triggered.")
    @OptionGroup var connection: Connection
    @Argument(help: "The event's id.") var id: String

    func run() async throws {
        try await connection.perform({ try await $0.call(EventsGet.self, EventIDParams(id: id)) }) { event in
            var text = "event \(event.id) \(event.type), published \(GantryJSON.formatTimestamp(event.publishedAt))"
            if let key = event.key { text += " (key \(key))" }
            if let original = event.replayOf { text += ", a replay of \(original)" }
            text += "\npayload \(Table.compact(event.payload))\n"
            text += event.triggered.isEmpty ? "triggered nothing\n" : event.triggered.map { "  " + describe($0) + "\n" }.joined()
            return text
        }
    }
}

struct EventsPublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "publish", abstract: "Publish an event; every matching subscription starts its target.")
    @OptionGroup var connection: Connection
    @Argument(help: "The event's type, like order.paid.") var type: String
    @Option(help: "The payload, as JSON (default {}).") var payload = "{}"
    @Option(help: "Publishing the same key again within a day answers this event and starts nothing.") var key: String?

    func run() async throws {
        guard let value = try? GantryJSON.makeDecoder().decode(JSONValue.self, from: Data(payload.utf8)) else {
            throw ValidationError("--payload must be JSON, like '{\"order_id\": 42}'.")
        }
        let params = EventsPublish.Params(type: type, payload: value, key: key)
        try await connection.perform({ try await $0.call(EventsPublish.self, params) }) { result in
            let what = result.triggered.isEmpty ? "nothing" : result.triggered.map(describe).joined(separator: ", ")
            return "event \(result.id)\(result.duplicate ? " (published before with this key)" : ""): triggered \(what)\n"
        }
    }
}

struct EventsReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "replay", abstract: "Publish an event again: every subscription matching now starts again.")
    @OptionGroup var connection: Connection
    @Argument(help: "The event's id.") var id: String

    func run() async throws {
        try await connection.perform({ try await $0.call(EventsReplay.self, EventIDParams(id: id)) }) { result in
            let what = result.triggered.isEmpty ? "nothing" : result.triggered.map(describe).joined(separator: ", ")
            return "event \(id) replayed as \(result.id): triggered \(what)\n"
        }
    }
}

struct SubscriptionsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "subscriptions", abstract: "Every subscription: the events it matches and what it starts.")
    @OptionGroup var connection: Connection

    func run() async throws {
        try await connection.perform({ try await $0.call(SubscriptionsList.self, NoParams()) }) { result in
            guard !result.subscriptions.isEmpty else { return "no subscriptions\n" }
            var rows = [["NAME", "EVENT", "FILTER", "TARGET", "STATE", "SOURCE"]]
            for subscription in result.subscriptions {
                rows.append([subscription.name, subscription.event, subscription.filter.map(Table.compact) ?? "",
                             Table.compact(subscription.target), subscription.paused ? "paused" : "active", subscription.source])
            }
            return Table.render(rows)
        }
    }
}
