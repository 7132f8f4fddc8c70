import Foundation
import GantryProtocol
import Hummingbird

extension DashboardPages {
    /// Events newest first, each with what it started; the subscriptions that decide that.
    func events(user: DashboardUser, query: FormFields) async throws -> Response {
        var params = EventsList.Params(type: query["type"], limit: Self.pageSize, cursor: query["before"])
        var problem = ""
        do { try params.validate() } catch {
            problem = error.message
            params.type = nil
        }
        let page = problem.isEmpty ? try await broker.eventStore.list(params) : EventsList.Result(events: [], nextCursor: nil)
        let subscriptions = try await broker.eventStore.subscriptions()
        let showPayloads = seesArgs(user)
        let rows: [[String: Any]] = page.events.map { event in
            [
                "id": event.id, "type": event.type, "published": DashboardView.ago(event.publishedAt), "key": event.key ?? "",
                "replayOf": event.replayOf ?? "", "payload": showPayloads ? DashboardView.compact(event.payload) : "hidden",
                "triggered": Self.triggers(event.triggered),
            ]
        }
        let subscriptionRows: [[String: Any]] = subscriptions.map { subscription in
            [
                "name": subscription.name, "event": subscription.event, "filter": subscription.filter.map { DashboardView.compact($0) } ?? "",
                "target": Self.summary(of: subscription.target), "paused": subscription.paused, "source": subscription.source,
                "csrf": user.csrf,
            ]
        }
        var next = ""
        if let cursor = page.nextCursor { next = "before=" + cursor + (query["type"].map { "&type=" + FormFields.encode($0) } ?? "") }
        let model: [String: Any] = [
            "events": rows, "subscriptions": subscriptionRows, "filterType": query["type"] ?? "", "nextPage": next, "problem": problem,
        ]
        return DashboardView.page("events", title: "Events", section: "/events", user: user, query: query, model: model)
    }

    /// One event: its payload and what it started, with their states now.
    func event(id: String, user: DashboardUser, query: FormFields) async throws -> Response {
        guard let number = Int64(id), let event = try await broker.eventStore.get(id: number) else {
            return DashboardView.page("event", title: "Event \(id)", section: "/events", user: user, query: query,
                                      model: ["missing": true, "id": id], status: .notFound)
        }
        let model: [String: Any] = [
            "id": event.id, "type": event.type, "key": event.key ?? "", "replayOf": event.replayOf ?? "",
            "published": DashboardView.timestamp(event.publishedAt), "seesArgs": seesArgs(user),
            "payload": seesArgs(user) ? DashboardView.pretty(event.payload) : "", "triggered": Self.triggers(event.triggered),
        ]
        return DashboardView.page("event", title: "Event \(event.id)", section: "/events", user: user, query: query, model: model)
    }

    /// A subscription's target as people read it: "job receipt.send in mail, args: the payload".
    static func summary(of target: JSONValue) -> String {
        if let package = target["package"]?.stringValue {
            return "package \(package)" + (target["config"].map { ", config: " + DashboardView.compact($0, limit: 60) } ?? "")
        }
        if let operation = target["operation"] {
            let steps = (operation["branches"]?["main"]?.arrayValue ?? []).map { entry in
                entry["parallel"]?.arrayValue.map { "(" + $0.compactMap { $0["type"]?.stringValue }.joined(separator: " + ") + ")" }
                    ?? entry["type"]?.stringValue ?? "?"
            }
            return "operation \(operation["name"]?.stringValue ?? "?"): " + steps.joined(separator: " › ")
        }
        let args = target["args"] == SubscriptionTarget.payloadArgs ? "the payload" : DashboardView.compact(target["args"], limit: 60)
        return "job \(target["type"]?.stringValue ?? "?") in \(target["queue"]?.stringValue ?? "?"), args: \(args)"
    }

    static func triggers(_ triggers: [EventTrigger]) -> [[String: Any]] {
        triggers.map { trigger in
            [
                "subscription": trigger.source, "jobID": trigger.jobID ?? "", "operationID": trigger.operationID ?? "",
                "state": trigger.state ?? trigger.skipped.map { "skipped: \($0)" } ?? "",
            ]
        }
    }

    func replayEvent(id: String) async throws -> Dashboard.ActionOutcome {
        let replayed = try await broker.events.replay(EventIDParams(id: id))
        let what = replayed.triggered.isEmpty ? "nothing" : "\(replayed.triggered.count) target\(replayed.triggered.count == 1 ? "" : "s")"
        return .done("/events/\(replayed.id)", "Event \(id) replayed as event \(replayed.id): it started \(what).", target: "event \(id)",
                     details: ["replay": .string(replayed.id)])
    }

    func subscriptionAction(_ verb: String, name: String) async throws -> Dashboard.ActionOutcome {
        let params = SubscriptionNameParams(name: name)
        try params.validate()
        switch verb {
        case "pause":
            _ = try await broker.events.setPaused(params, true)
            return .done("/events", "Subscription \(name) paused: events start nothing through it.", target: "subscription \(name)")
        case "resume":
            _ = try await broker.events.setPaused(params, false)
            return .done("/events", "Subscription \(name) resumed.", target: "subscription \(name)")
        default:
            _ = try await broker.events.delete(params)
            return .done("/events", "Subscription \(name) deleted.", target: "subscription \(name)")
        }
    }
}
