import Foundation
import GantryProtocol
import Hummingbird

extension DashboardPages {
    func cron(user: DashboardUser, query: FormFields) async throws -> Response {
        let schedules = try await broker.cronStore.list()
        let rows: [[String: Any]] = schedules.map { schedule in
            [
                "name": schedule.name, "description": schedule.description ?? "", "cron": schedule.cron, "timezone": schedule.timezone,
                "type": schedule.type, "typePath": Self.pathSegment(schedule.type), "queue": schedule.queue,
                "nextRun": schedule.nextRunAt.map { DashboardView.timestamp($0) + " (" + DashboardView.ago($0) + ")" } ?? "–",
                "lastRun": schedule.lastRunAt.map { DashboardView.ago($0) } ?? "never", "lastJobID": schedule.lastJobID ?? "",
                "paused": schedule.paused, "csrf": user.csrf,
            ]
        }
        return DashboardView.page("cron", title: "Cron", section: "/cron", user: user, query: query, model: ["schedules": rows])
    }

    func cronAction(_ verb: String, name: String) async throws -> Dashboard.ActionOutcome {
        let params = CronNameParams(name: name)
        try params.validate()
        switch verb {
        case "trigger":
            let result = try await broker.cron.trigger(params)
            return .done("/cron", "Schedule \(name) ran now: job \(result.id).", target: "schedule \(name)", details: ["job_id": .string(result.id)])
        case "pause":
            _ = try await broker.cron.pause(params)
            return .done("/cron", "Schedule \(name) paused.", target: "schedule \(name)")
        case "resume":
            _ = try await broker.cron.resume(params)
            return .done("/cron", "Schedule \(name) resumed.", target: "schedule \(name)")
        default:
            _ = try await broker.cron.delete(params)
            return .done("/cron", "Schedule \(name) deleted.", target: "schedule \(name)")
        }
    }

    func audit(user: DashboardUser, query: FormFields) async throws -> Response {
        let entries = try await broker.dashboardStore.audit(before: query["before"].flatMap { Int64($0) }, limit: Self.pageSize)
        let showArgs = seesArgs(user)
        let rows: [[String: Any]] = entries.map { entry in
            var details = entry.details
            // What was run, and with which args, is for those who may see args.
            if !showArgs, case .object(var members)? = details, members["args"] != nil {
                members["args"] = "hidden"
                details = .object(members)
            }
            return [
                "at": DashboardView.timestamp(entry.at), "actor": entry.actor, "action": entry.action, "target": entry.target,
                "details": DashboardView.compact(details, limit: 300), "outcome": entry.outcome,
            ]
        }
        let model: [String: Any] = ["entries": rows, "nextPage": entries.count == Self.pageSize ? String(entries.last!.id) : ""]
        return DashboardView.page("audit", title: "Audit", section: "/audit", user: user, query: query, model: model)
    }
}
