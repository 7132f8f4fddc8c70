import Foundation
import GantryProtocol
import Hummingbird

extension DashboardPages {
    func queues(user: DashboardUser, query: FormFields) async throws -> Response {
        let stats = try await broker.queues.stats()
        let rows = Self.queueRows(stats).map { row -> [String: Any] in
            var row = row
            row["csrf"] = user.csrf
            return row
        }
        return DashboardView.page("queues", title: "Queues", section: "/queues", user: user, query: query, model: ["queues": rows])
    }

    func pauseQueue(_ queue: String, pause: Bool) async throws -> Dashboard.ActionOutcome {
        try Names.checkQueue(queue, field: "queue")
        if pause { _ = try await broker.queues.pause(QueuesPause.Params(queue: queue)) } else { _ = try await broker.queues.resume(QueuesResume.Params(queue: queue)) }
        return .done("/queues", "Queue \(queue) \(pause ? "paused: it hands out no jobs until resumed" : "resumed").", target: "queue \(queue)")
    }

    func configureQueue(form: FormFields) async throws -> Dashboard.ActionOutcome {
        let queue = form["queue"] ?? ""
        func number(_ name: String) throws(RPCErrorObject) -> Int? {
            guard let text = form[name] else { return nil }
            guard let value = Int(text) else { throw .invalidParams(field: name, "must be a whole number, got \(text)") }
            return value
        }
        let rate: RateLimit?
        switch (try number("rate_limit"), try number("rate_period_ms")) {
        case (nil, nil): rate = nil
        case (let limit?, let period?): rate = RateLimit(limit: limit, periodMs: Int64(period))
        default: throw RPCErrorObject.invalidParams(field: "rate_limit", "needs both a number of starts and a period in ms")
        }
        let params = QueuesConfigure.Params(queue: queue, concurrency: try number("concurrency"), rateLimit: rate)
        try params.validate()
        _ = try await broker.queues.configure(params)
        let details: JSONValue = [
            "concurrency": params.concurrency.map { .int(Int64($0)) } ?? .null,
            "rate_limit": rate.map { .object(["limit": .int(Int64($0.limit)), "period_ms": .int($0.periodMs)]) } ?? .null,
        ]
        return .done("/queues", "Limits of \(queue) set.", target: "queue \(queue)", details: details)
    }

    func workers(user: DashboardUser, query: FormFields) async throws -> Response {
        let workers = try await broker.workers.list().workers
        let rows: [[String: Any]] = workers.map { worker in
            [
                "id": worker.id, "client": worker.client ?? "", "peer": worker.peer, "queues": worker.queues.joined(separator: ", "),
                "handlers": worker.handlers.joined(separator: ", "), "jobsHeld": worker.jobsHeld > 0 ? worker.jobsHeld as Any : "", "concurrency": worker.concurrency,
                "state": worker.state.rawValue, "connected": DashboardView.ago(worker.connectedAt), "lastSeen": DashboardView.ago(worker.lastSeenAt),
                "csrf": user.csrf,
            ]
        }
        return DashboardView.page("workers", title: "Workers", section: "/workers", user: user, query: query, model: ["workers": rows])
    }

    func steerWorkers(form: FormFields, order: WorkerNotification) async throws -> Dashboard.ActionOutcome {
        let params = WorkersQuiet.Params(id: form["id"], all: form["all"] == "true")
        try params.validate()
        let told = try await broker.workers.steer(params, order).workers
        let whom = params.all ? "every worker" : "worker \(params.id ?? "")"
        let verb = order == .quiet ? "take no new jobs" : "hand back its jobs and stop"
        return .done("/workers", "Told \(whom) to \(verb) (\(told) connected).", target: whom)
    }
}
