import Foundation
import GantryProtocol
import Hummingbird

extension DashboardPages {
    /// Operations newest first, filtered by name, state and what their globals hold.
    func operations(user: DashboardUser, query: FormFields) async throws -> Response {
        var params = OperationsList.Params(name: query["name"], limit: Self.pageSize, cursor: query["before"])
        var problems: [String] = []
        if let state = query["state"] {
            if let known = OperationState(rawValue: state) { params.state = known } else { problems.append("state \(state) is not an operation state") }
        }
        if let globals = query["globals"] {
            if !seesArgs(user) {
                problems.append("Searching by globals needs a token that may see args (an admin's, or a viewer's with --dashboard-viewers-see-args).")
            } else if let value = try? JSONReader.read(Data(globals.utf8)), case .object = value {
                params.globals = value
            } else {
                problems.append("globals must be a JSON object to look for inside operations' globals, like {\"user_id\": 7}")
            }
        }
        do { try params.validate() } catch { problems.append(error.message) }
        let page = problems.isEmpty ? try await broker.operationStore.list(params) : OperationsList.Result(operations: [], nextCursor: nil)
        let showGlobals = seesArgs(user)
        let rows: [[String: Any]] = page.operations.map { operation in
            [
                "id": operation.id, "name": operation.name, "namePath": Self.pathSegment(operation.name), "state": operation.state.rawValue,
                "at": "\(operation.branch)[\(operation.index)]", "path": operation.path.joined(separator: " › "),
                "globals": showGlobals ? DashboardView.compact(operation.globals) : "hidden",
                "error": operation.error?["message"]?.stringValue ?? "",
                "created": DashboardView.ago(operation.createdAt), "finished": operation.finishedAt.map { DashboardView.ago($0) } ?? "",
            ]
        }
        var next: [String] = []
        if let cursor = page.nextCursor {
            next = ["before=" + cursor]
            for key in ["name", "state", "globals"] { if let value = query[key] { next.append(key + "=" + FormFields.encode(value)) } }
        }
        let model: [String: Any] = [
            "operations": rows, "filterName": query["name"] ?? "", "filterGlobals": query["globals"] ?? "",
            "states": OperationState.allCases.map { ["state": $0.rawValue, "selected": query["state"] == $0.rawValue] as [String: Any] },
            "nextPage": next.joined(separator: "&"), "problem": problems.isEmpty ? "" : problems.joined(separator: "; "),
            "seesArgs": showGlobals,
        ]
        return DashboardView.page("operations", title: "Operations", section: "/operations", user: user, query: query, model: model)
    }

    /// One operation: its globals, the path it took and each step as a timeline, with errors and backtraces.
    func operation(id: String, user: DashboardUser, query: FormFields) async throws -> Response {
        guard let number = Int64(id), let operation = try await broker.operationStore.get(id: number) else {
            return DashboardView.page("operation", title: "Operation \(id)", section: "/operations", user: user, query: query,
                                      model: ["missing": true, "id": id], status: .notFound)
        }
        let showGlobals = seesArgs(user)
        let steps: [[String: Any]] = (operation.steps ?? []).map { step in
            [
                "branch": step.branch, "place": step.member.map { "\(step.index + 1).\($0 + 1)" } ?? String(step.index + 1),
                "type": step.type, "typePath": Self.pathSegment(step.type), "state": step.state.rawValue,
                "stateClass": step.state == .pending ? "available" : step.state == .unprocessed ? "scheduled" : step.state.rawValue,
                "jobID": step.jobID ?? "", "attempts": step.jobID == nil ? "" : String(step.attempts),
                "started": DashboardView.timestamp(step.startedAt), "took": step.durationMs.map { DashboardView.duration(Double($0) / 1000) } ?? "",
                "message": step.error?["message"]?.stringValue ?? "", "kind": step.error?["kind"]?.stringValue ?? "",
                "backtrace": Self.backtrace(step.error?["backtrace"]), "retried": step.retried == true,
            ]
        }
        let model: [String: Any] = [
            "id": operation.id, "name": operation.name, "key": operation.key ?? "", "state": operation.state.rawValue, "queue": operation.queue,
            "path": operation.path.joined(separator: " › "), "at": "\(operation.branch)[\(operation.index)]",
            "created": DashboardView.timestamp(operation.createdAt), "updated": DashboardView.timestamp(operation.updatedAt),
            "finished": DashboardView.timestamp(operation.finishedAt),
            "globals": showGlobals ? DashboardView.pretty(operation.globals) : "", "seesArgs": showGlobals,
            "errorMessage": operation.error?["message"]?.stringValue ?? "",
            "errorAt": operation.error.map { "\($0["branch"]?.stringValue ?? "?") step \(($0["index"]?.intValue ?? 0) + 1), \($0["type"]?.stringValue ?? "")" } ?? "",
            "steps": steps,
            "canResume": operation.state == .failed || operation.state == .cancelled,
            "canRestart": operation.state != .running,
            "canCancel": operation.state == .running || operation.state == .failed,
        ]
        return DashboardView.page("operation", title: "Operation \(operation.id)", section: "/operations", user: user, query: query, model: model)
    }

    static func backtrace(_ value: JSONValue?) -> String {
        switch value {
        case .string(let text)?: text
        case .array(let frames)?: frames.compactMap(\.stringValue).joined(separator: "\n")
        default: ""
        }
    }

    func operationAction(_ verb: String, id: String, form: FormFields) async throws -> Dashboard.ActionOutcome {
        let page = "/operations/\(Self.pathSegment(id))"
        switch verb {
        case "cancel":
            let result = try await broker.operations.cancel(OperationIDParams(id: id))
            return .done(page, "Operation \(id) cancelled: \(result.cancelled) waiting step\(result.cancelled == 1 ? "" : "s") cancelled, \(result.stopping) running asked to stop.",
                         target: "operation \(id)")
        default:
            let from: OperationsRetry.From = form["from"] == "start" ? .start : .failed
            let result = try await broker.operations.retry(OperationsRetry.Params(id: id, from: from))
            let how = from == .start ? "from the start" : "from the step that did not complete"
            return .done(page, "Operation \(id) resumed \(how): job\(result.jobIDs.count == 1 ? "" : "s") \(result.jobIDs.joined(separator: ", ")).",
                         target: "operation \(id)", details: ["from": .string(from.rawValue)])
        }
    }
}
