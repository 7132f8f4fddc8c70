import Foundation
import GantryProtocol
import Hummingbird
import Logging

extension DashboardPages {
    func types(user: DashboardUser, query: FormFields) async throws -> Response {
        let types = try await broker.typeStore.list()
        let rows: [[String: Any]] = types.map { type in
            [
                "type": type.type, "typePath": Self.pathSegment(type.type), "description": type.description ?? "",
                "queue": type.queue ?? "", "hasSchema": type.argsSchema != nil, "source": type.source,
                "announced": type.announcedAt.map { DashboardView.ago($0) } ?? "never", "runnable": type.runnable,
            ]
        }
        return DashboardView.page("types", title: "Job types", section: "/types", user: user, query: query, model: ["types": rows])
    }

    /// What the run form was filled with, to show it again beside the broker's errors.
    struct RunForm {
        var args: String?
        var queue: String?
        var priority: String?
        var when = "now"
        var runAt: String?
        var scheduleName: String?
        var cron: String?
        var timezone: String?
        var errors: [[String: String]] = []
    }

    func type(named name: String, user: DashboardUser, query: FormFields, form: RunForm? = nil, problem: String? = nil,
              status: HTTPResponse.Status = .ok) async throws -> Response {
        let known = try await broker.typeStore.get(name)
        // A type nobody registered can still be run by hand, without a schema (any args), as `enqueue` allows.
        let type = known ?? JobType(type: name, queue: nil, description: nil, argsSchema: nil, runnable: true, source: "unknown",
                                     announcedAt: nil, createdAt: Date(), updatedAt: Date())
        var presets: [TypeStore.Preset] = []
        if known != nil { presets = try await broker.typeStore.presets(of: name) }
        var args = form?.args
        if args == nil, let jobID = query["job"].flatMap({ Int64($0) }), let job = try await broker.jobStore.job(id: jobID), seesArgs(user) {
            args = DashboardView.pretty(job.args)
        }
        if args == nil, let presetName = query["preset"], let preset = presets.first(where: { $0.name == presetName }) {
            args = DashboardView.pretty(preset.args)
        }
        let schemaJSON = type.argsSchema.map { (try? JSONWriter.string($0)) ?? "null" } ?? "null"
        let model: [String: Any] = [
            "type": type.type, "typePath": Self.pathSegment(type.type), "description": type.description ?? "",
            "queueOrDefault": form?.queue ?? type.queue ?? ProtocolDefaults.queue, "source": type.source,
            "announced": type.announcedAt.map { DashboardView.ago($0) } ?? "never", "runnable": type.runnable,
            // Inside <script>, "</script" or "<!--" would change how the page parses; "<" only occurs inside JSON
            // strings, where \u003c is the same character.
            "schemaJSON": schemaJSON.replacingOccurrences(of: "<", with: "\\u003c"),
            "schemaPretty": DashboardView.pretty(type.argsSchema),
            "argsJSON": args ?? "{}",
            "errors": form?.errors ?? [],
            "priority": form?.priority ?? String(ProtocolDefaults.priority),
            "whenAt": form?.when == "at", "whenCron": form?.when == "cron", "runAt": form?.runAt ?? "",
            "scheduleName": form?.scheduleName ?? "", "cronText": form?.cron ?? "", "timezoneOrUTC": form?.timezone ?? "UTC",
            "hasPresets": !presets.isEmpty,
            "presets": presets.map { ["name": $0.name, "namePath": Self.pathSegment($0.name), "typePath": Self.pathSegment(type.type), "csrf": user.csrf] },
            "problem": problem as Any,
        ]
        return DashboardView.page("type", title: type.type, section: "/types", user: user, query: query, model: model, status: status)
    }

    /// The run form: enqueue now, at a time, or as a new cron schedule; the broker checks the args against the
    /// type's schema exactly as for `enqueue`, and its errors come back beside the fields.
    func run(type name: String, form: FormFields, user: DashboardUser) async throws -> Dashboard.ActionOutcome {
        try Names.checkType(name, field: "type")
        let back = "/types/\(Self.pathSegment(name))"
        var filled = RunForm(args: form["args"], queue: form["queue"], priority: form["priority"], when: form["when"] ?? "now",
                             runAt: form["run_at"], scheduleName: form["schedule_name"], cron: form["cron"], timezone: form["timezone"])
        func again(_ problem: String, errors: [[String: String]] = []) async throws -> Dashboard.ActionOutcome {
            filled.errors = errors
            let page = try await type(named: name, user: user, query: FormFields(""), form: filled, problem: problem, status: .unprocessableContent)
            var outcome = Dashboard.ActionOutcome.failed(back, problem, target: "type \(name)")
            outcome.response = page
            return outcome
        }
        if let known = try await broker.typeStore.get(name), !known.runnable {
            return try await again("\(name) is registered as not runnable by hand (types.register with runnable: false).")
        }
        let args: JSONValue
        do { args = try JSONReader.read(Data((filled.args ?? "{}").utf8)) } catch {
            return try await again("The args are not valid JSON: \(error).")
        }
        let priority = Int(filled.priority ?? "") ?? ProtocolDefaults.priority
        let queue = filled.queue ?? ProtocolDefaults.queue
        do {
            switch filled.when {
            case "cron":
                guard let scheduleName = filled.scheduleName, let cron = filled.cron else {
                    return try await again("A schedule needs a name and a cron expression.")
                }
                let params = CronUpsert.Params(name: scheduleName, cron: cron, type: name, args: args, queue: queue, priority: priority,
                                               timezone: filled.timezone ?? "UTC")
                try params.validate()
                let result = try await broker.cron.upsert(params)
                let preset = await savePreset(form, type: name, args: args, user: user)
                return .done("/cron", "Schedule \(scheduleName) \(result.created ? "created" : "updated"): \(cron) (\(params.timezone)).\(preset)",
                             target: "type \(name)", details: ["schedule": .string(scheduleName), "args": args])
            default:
                var params = Enqueue.Params(type: name, args: args, queue: queue, priority: priority)
                if filled.when == "at" {
                    guard let runAt = filled.runAt.flatMap(Self.parseLocalTime) else { return try await again("Give the time to run at (UTC).") }
                    params.runAt = runAt
                }
                params.meta = ["enqueued_by": .string("dashboard:\(user.name)")]
                try params.validate()
                let result = try await broker.jobs.enqueue(params)
                let preset = await savePreset(form, type: name, args: args, user: user)
                return .done("/jobs/\(result.id)", "Enqueued job \(result.id) (\(result.state.rawValue)).\(preset)", target: "type \(name)",
                             details: ["job_id": .string(result.id), "args": args])
            }
        } catch let error as RPCErrorObject {
            return try await again(error.message, errors: Self.fieldErrors(error))
        }
    }

    /// Saves the args as a preset when the form named one; what to add to the notice. Done after the job or
    /// schedule exists, and its failure is said beside that success, never in its place.
    private func savePreset(_ form: FormFields, type: String, args: JSONValue, user: DashboardUser) async -> String {
        guard let presetName = form["preset_name"] else { return "" }
        let name = String(presetName.prefix(100))
        do {
            try await broker.typeStore.savePreset(type: type, name: name, args: args, by: user.name)
            return " Saved as the preset \(name)."
        } catch {
            broker.logger.warning("could not save a preset", metadata: ["type": "\(type)", "preset": "\(name)", "error": "\(error)"])
            return " The preset \(name) could not be saved (\(Broker.describe(error, logger: broker.logger, method: "preset").message))."
        }
    }

    func deletePreset(type: String, name: String) async throws -> Dashboard.ActionOutcome {
        let back = "/types/\(Self.pathSegment(type))"
        guard try await broker.typeStore.deletePreset(type: type, name: name) else {
            return .failed(back, "There is no preset \(name) of \(type).", target: "type \(type)")
        }
        return .done(back, "The preset \(name) is deleted.", target: "type \(type)", details: ["preset": .string(name)])
    }

    /// The violations an args error lists, as the form shows them beside its fields.
    static func fieldErrors(_ error: RPCErrorObject) -> [[String: String]] {
        guard case .array(let violations)? = error.data?["violations"] else {
            if let field = error.data?["field"]?.stringValue, field.hasPrefix("args") { return [["path": field, "message": error.message]] }
            return []
        }
        return violations.compactMap { violation in
            guard let path = violation["path"]?.stringValue, let message = violation["message"]?.stringValue else { return nil }
            return ["path": path, "message": message]
        }
    }
}
