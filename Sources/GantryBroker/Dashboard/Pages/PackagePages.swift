import Foundation
import GantryProtocol
import Hummingbird

extension DashboardPages {
    /// Every package with its steps and triggers, then the saved executions.
    func packages(user: DashboardUser, query: FormFields) async throws -> Response {
        let showConfig = seesArgs(user)
        let packages = try await broker.packageStore.list()
        let rows: [[String: Any]] = packages.map { package in
            [
                "name": package.name, "namePath": Self.pathSegment(package.name), "description": package.description ?? "",
                "steps": package.steps.summary, "triggers": package.triggers.summary,
                "next": package.nextRunAt.map { DashboardView.timestamp($0) } ?? "", "active": package.active,
                "config": showConfig ? DashboardView.compact(package.config) : "hidden", "source": package.source,
            ]
        }
        let saved = try await broker.packageStore.saved(package: nil)
        let model: [String: Any] = [
            "packages": rows, "saved": saved.map { Self.executionRow($0, showConfig: showConfig) }, "seesArgs": showConfig,
        ]
        return DashboardView.page("packages", title: "Packages", section: "/packages", user: user, query: query, model: model)
    }

    /// One package: its triggers, config and steps, a Run form, and its executions as step lists (paged).
    func package(named name: String, user: DashboardUser, query: FormFields, runConfig: String? = nil, problem: String? = nil,
                 status: HTTPResponse.Status = .ok) async throws -> Response {
        guard let package = try await broker.packageStore.package(named: name) else {
            return DashboardView.page("package", title: "Package \(name)", section: "/packages", user: user, query: query,
                                      model: ["missing": true, "name": name], status: .notFound)
        }
        let showConfig = seesArgs(user)
        var params = PackagesExecutions.Params(name: name, cursor: query["before"])
        if (try? params.validate()) == nil { params.cursor = nil }
        let page = try await broker.packageStore.executions(params)
        var model: [String: Any] = [
            "name": package.name, "namePath": Self.pathSegment(package.name), "description": package.description ?? "",
            "steps": package.steps.summary, "triggers": package.triggers.summary, "queue": package.queue,
            "next": package.nextRunAt.map { DashboardView.timestamp($0) } ?? "", "active": package.active, "source": package.source,
            "config": showConfig ? DashboardView.pretty(package.config) : "", "seesArgs": showConfig,
            "runnable": package.active && package.triggers.manual,
            "runConfig": runConfig ?? "{}", "executions": page.executions.map { Self.executionRow($0, showConfig: showConfig) },
            "nextPage": page.nextCursor.map { "before=" + $0 } ?? "",
        ]
        if let problem { model["runProblem"] = problem }
        return DashboardView.page("package", title: "Package \(package.name)", section: "/packages", user: user, query: query,
                                  model: model, status: status)
    }

    static func executionRow(_ execution: Execution, showConfig: Bool) -> [String: Any] {
        [
            "id": execution.id, "package": execution.package, "packagePath": pathSegment(execution.package), "state": execution.state.rawValue,
            "trigger": execution.trigger.rawValue, "started": DashboardView.ago(execution.createdAt),
            "config": showConfig ? DashboardView.compact(execution.config) : "hidden",
            "error": execution.error?["message"]?.stringValue ?? "",
            "savedName": execution.saved?.name ?? "", "savedDescription": execution.saved?.description ?? "",
            "steps": execution.steps.map { step in
                [
                    "type": step.type, "state": step.state.rawValue, "jobID": step.jobID ?? "",
                    "place": step.member.map { "\(step.index + 1).\($0 + 1)" } ?? String(step.index + 1),
                    "stateClass": step.state == .pending ? "available" : step.state == .unprocessed ? "scheduled" : step.state.rawValue,
                    "result": showConfig ? step.result.map { DashboardView.compact($0, limit: 80) } ?? "" : "",
                ] as [String: Any]
            },
        ]
    }

    /// The Run button: the config overrides as JSON; a mistake shows the form again with what was typed.
    func runPackage(named name: String, form: FormFields, user: DashboardUser) async throws -> Dashboard.ActionOutcome {
        let back = "/packages/\(Self.pathSegment(name))"
        let typed = form["config"] ?? "{}"
        func again(_ problem: String) async throws -> Dashboard.ActionOutcome {
            var outcome = Dashboard.ActionOutcome.failed(back, problem, target: "package \(name)")
            outcome.response = try await package(named: name, user: user, query: FormFields(""), runConfig: typed, problem: problem,
                                                 status: .unprocessableContent)
            return outcome
        }
        let overrides: JSONValue
        do { overrides = try JSONReader.read(Data((typed.isEmpty ? "{}" : typed).utf8)) } catch {
            return try await again("The config overrides are not valid JSON: \(error).")
        }
        let params = PackagesRun.Params(name: name, config: overrides == [:] ? nil : overrides)
        let started: PackagesRun.Result
        do {
            try params.validate()
            started = try await broker.packages.run(params, session: nil)
        } catch let error as RPCErrorObject {
            return try await again(error.message)
        }
        return .done(back, "Package \(name) started: execution \(started.id).", target: "package \(name)",
                     details: ["execution": .string(started.id), "config": params.config ?? [:]])
    }

    func saveExecution(id: String, package name: String, form: FormFields) async throws -> Dashboard.ActionOutcome {
        let back = "/packages/\(Self.pathSegment(name))"
        let params = ExecutionsSave.Params(id: id, name: form["name"] ?? "", description: form["description"])
        try params.validate()
        let execution = try await broker.packages.save(params)
        return .done(back, "Execution \(id) saved as \(execution.saved?.name ?? params.name); cleanup will keep it.",
                     target: "execution \(id)", details: ["name": .string(params.name)])
    }
}
