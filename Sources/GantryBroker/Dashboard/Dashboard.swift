import Foundation
import GantryProtocol
import Hummingbird
import Logging

/// The dashboard on gantryd's HTTP port: pages to see jobs, queues, workers, schedules and job types, and
/// actions to steer them. Every page resolves its user first (`DashboardAccess`); every action also needs the
/// admin role and the page's CSRF token, and is written to the audit log with its outcome.
struct Dashboard: Sendable {
    let broker: Broker
    var access: DashboardAccess { DashboardAccess(broker: broker) }
    var pages: DashboardPages { DashboardPages(broker: broker) }

    typealias PageBody = @Sendable (DashboardPages, Request, Context, DashboardUser, FormFields) async throws -> Response
    typealias ActionBody = @Sendable (DashboardPages, Context, DashboardUser, FormFields) async throws -> ActionOutcome
    typealias Context = PeerRequestContext

    /// What an action did: where to go next, what to tell the user, and what the audit log keeps.
    struct ActionOutcome: Sendable {
        var redirect: String
        var notice: String?
        var problem: String?
        var target: String
        var details: JSONValue?
        var response: Response?

        static func done(_ redirect: String, _ notice: String, target: String, details: JSONValue? = nil) -> ActionOutcome {
            ActionOutcome(redirect: redirect, notice: notice, target: target, details: details)
        }
        static func failed(_ redirect: String, _ problem: String, target: String, details: JSONValue? = nil) -> ActionOutcome {
            ActionOutcome(redirect: redirect, problem: problem, target: target, details: details)
        }
    }

    func register(on router: Router<Context>) {
        router.get("assets/:file") { _, context in
            guard let name = context.parameters.get("file"), let asset = DashboardAssets.files[name] else {
                return DashboardView.plain("no such asset", status: .notFound)
            }
            var response = Response(status: .ok, headers: [.contentType: asset.contentType], body: ResponseBody(byteBuffer: ByteBuffer(string: asset.body)))
            response.headers[.cacheControl] = "public, max-age=300"
            return response
        }
        router.get("login") { request, _ in pages.login(query: FormFields(request.uri.query.map { Substring($0) } ?? "")) }
        router.post("login") { request, _ in
            do { return try await pages.signIn(form: try await Self.form(request)) } catch {
                return Self.failure(error, broker: pages.broker, path: request.uri.path)
            }
        }
        router.post("logout") { request, context in
            do {
                guard case .user(let user) = try await access.resolve(request, context: context) else { return DashboardView.redirect("/login") }
                return try await pages.signOut(user: user, form: try await Self.form(request))
            } catch {
                return Self.failure(error, broker: pages.broker, path: request.uri.path)
            }
        }

        page(router, "/") { pages, _, _, user, query in try await pages.overview(user: user, query: query) }
        page(router, "/jobs") { pages, _, _, user, query in try await pages.jobs(user: user, query: query) }
        page(router, "/jobs/:id") { pages, _, context, user, query in try await pages.job(id: Self.parameter(context, "id"), user: user, query: query) }
        page(router, "/bulk/:id") { pages, _, context, user, query in try await pages.bulk(id: Self.parameter(context, "id"), user: user, query: query) }
        page(router, "/queues") { pages, _, _, user, query in try await pages.queues(user: user, query: query) }
        page(router, "/workers") { pages, _, _, user, query in try await pages.workers(user: user, query: query) }
        page(router, "/cron") { pages, _, _, user, query in try await pages.cron(user: user, query: query) }
        page(router, "/types") { pages, _, _, user, query in try await pages.types(user: user, query: query) }
        page(router, "/types/:type") { pages, _, context, user, query in try await pages.type(named: Self.parameter(context, "type"), user: user, query: query) }
        page(router, "/operations") { pages, _, _, user, query in try await pages.operations(user: user, query: query) }
        page(router, "/operations/:id") { pages, _, context, user, query in try await pages.operation(id: Self.parameter(context, "id"), user: user, query: query) }
        page(router, "/events") { pages, _, _, user, query in try await pages.events(user: user, query: query) }
        page(router, "/events/:id") { pages, _, context, user, query in try await pages.event(id: Self.parameter(context, "id"), user: user, query: query) }
        page(router, "/packages") { pages, _, _, user, query in try await pages.packages(user: user, query: query) }
        page(router, "/packages/:name") { pages, _, context, user, query in try await pages.package(named: Self.parameter(context, "name"), user: user, query: query) }
        page(router, "/audit") { pages, _, _, user, query in try await pages.audit(user: user, query: query) }

        action(router, "/jobs/:id/retry", "jobs.retry") { pages, context, _, _ in try await pages.jobAction(.retry, id: Self.parameter(context, "id")) }
        action(router, "/jobs/:id/cancel", "jobs.cancel") { pages, context, _, _ in try await pages.jobAction(.cancel, id: Self.parameter(context, "id")) }
        action(router, "/jobs/:id/discard", "jobs.discard") { pages, context, _, _ in try await pages.jobAction(.discard, id: Self.parameter(context, "id")) }
        action(router, "/jobs/bulk", "jobs.bulk") { pages, _, user, form in try await pages.bulkAction(form: form, user: user) }
        action(router, "/queues/limits", "queues.configure") { pages, _, _, form in try await pages.configureQueue(form: form) }
        action(router, "/queues/:queue/pause", "queues.pause") { pages, context, _, _ in try await pages.pauseQueue(Self.parameter(context, "queue"), pause: true) }
        action(router, "/queues/:queue/resume", "queues.resume") { pages, context, _, _ in try await pages.pauseQueue(Self.parameter(context, "queue"), pause: false) }
        action(router, "/workers/quiet", "workers.quiet") { pages, _, _, form in try await pages.steerWorkers(form: form, order: .quiet) }
        action(router, "/workers/stop", "workers.stop") { pages, _, _, form in try await pages.steerWorkers(form: form, order: .stop) }
        for verb in ["trigger", "pause", "resume", "delete"] {
            action(router, "/cron/:name/\(verb)", "cron.\(verb)") { pages, context, _, _ in try await pages.cronAction(verb, name: Self.parameter(context, "name")) }
        }
        for verb in ["retry", "cancel"] {
            action(router, "/operations/:id/\(verb)", "operations.\(verb)") { pages, context, _, form in
                try await pages.operationAction(verb, id: Self.parameter(context, "id"), form: form)
            }
        }
        action(router, "/events/:id/replay", "events.replay") { pages, context, _, _ in
            try await pages.replayEvent(id: Self.parameter(context, "id"))
        }
        action(router, "/packages/:name/run", "packages.run") { pages, context, user, form in
            try await pages.runPackage(named: Self.parameter(context, "name"), form: form, user: user)
        }
        action(router, "/packages/:name/executions/:id/save", "executions.save") { pages, context, _, form in
            try await pages.saveExecution(id: Self.parameter(context, "id"), package: Self.parameter(context, "name"), form: form)
        }
        for verb in ["pause", "resume", "delete"] {
            action(router, "/subscriptions/:name/\(verb)", "subscriptions.\(verb)") { pages, context, _, _ in
                try await pages.subscriptionAction(verb, name: Self.parameter(context, "name"))
            }
        }
        action(router, "/types/:type/presets/:name/delete", "types.preset.delete") { pages, context, _, _ in
            try await pages.deletePreset(type: Self.parameter(context, "type"), name: Self.parameter(context, "name"))
        }
        action(router, "/types/:type/run", "types.run") { pages, context, user, form in
            try await pages.run(type: Self.parameter(context, "type"), form: form, user: user)
        }
    }

    /// A page anyone signed in may see.
    private func page(_ router: Router<Context>, _ path: RouterPath, _ body: @escaping PageBody) {
        let (access, pages) = (access, pages)
        router.get(path) { request, context in
            let outcome: DashboardAccess.Outcome
            do { outcome = try await access.resolve(request, context: context) } catch {
                return Self.failure(error, broker: pages.broker, path: request.uri.path)
            }
            switch outcome {
            case .refused(let response): return response
            case .user(var user):
                // Without tokens the CSRF token is a cookie the forms repeat (double submit): set on first visit.
                let freshCSRF = user.isOpen && user.csrf.isEmpty ? DashboardAccess.randomToken() : nil
                if let freshCSRF { user.csrf = freshCSRF }
                var response: Response
                do {
                    response = try await body(pages, request, context, user, FormFields(request.uri.query.map { Substring($0) } ?? ""))
                } catch {
                    response = Self.failure(error, broker: pages.broker, path: request.uri.path)
                }
                if let freshCSRF {
                    response.setCookie(Cookie(name: DashboardAccess.csrfCookie, value: freshCSRF, path: "/", httpOnly: true, sameSite: .strict))
                }
                return response
            }
        }
    }

    /// A state-changing request: admin only, CSRF-checked, audited.
    private func action(_ router: Router<Context>, _ path: RouterPath, _ name: String, _ body: @escaping ActionBody) {
        let (access, pages, broker) = (access, pages, broker)
        router.post(path) { request, context in
            let user: DashboardUser
            let form: FormFields
            do {
                switch try await access.resolve(request, context: context) {
                case .refused(let response): return response
                case .user(let resolved): user = resolved
                }
                form = try await Self.form(request)
            } catch {
                return Self.failure(error, broker: broker, path: request.uri.path)
            }
            if let refusal = access.checkCSRF(user, form: form) { return refusal }
            guard user.mayAct else {
                return DashboardView.plain("forbidden: \(user.name) has the role \(user.role.rawValue), which may look but not act", status: .forbidden)
            }
            let outcome: ActionOutcome
            do {
                outcome = try await body(pages, context, user, form)
            } catch {
                let described = error as? RPCErrorObject ?? Broker.describe(error, logger: broker.logger, method: "dashboard \(name)")
                outcome = .failed(request.headers[.referer].flatMap(Self.localPath) ?? "/", described.message, target: request.uri.path)
            }
            do {
                try await broker.dashboardStore.record(
                    actor: user.name, action: name, target: outcome.target, details: outcome.details,
                    outcome: outcome.problem.map { "failed: " + $0 } ?? outcome.notice ?? "ok")
            } catch {
                broker.logger.warning("could not write the dashboard's audit log", metadata: ["action": "\(name)", "error": "\(error)"])
            }
            broker.logger.info("dashboard action", metadata: [
                "user": "\(user.name)", "action": "\(name)", "target": "\(outcome.target)", "outcome": "\(outcome.problem ?? "ok")",
            ])
            return outcome.response ?? DashboardView.redirect(outcome.redirect, notice: outcome.notice, problem: outcome.problem)
        }
    }

    /// A page that could not be made (PostgreSQL away, a bug): said in words, logged, never a blank 500.
    static func failure(_ error: any Error, broker: Broker, path: String) -> Response {
        let described = Broker.describe(error, logger: broker.logger, method: "dashboard \(path)")
        let retryable = GantryErrorCode(rawValue: described.code)?.isRetryable == true
        return DashboardView.plain(
            "This page could not be shown: \(described.message)" + (retryable ? " Reload in a moment." : ""),
            status: retryable ? .serviceUnavailable : .internalServerError)
    }

    /// The path of a same-site Referer, to send the user back where they acted.
    private static func localPath(_ referer: String) -> String? {
        guard let url = URL(string: referer), !url.path.isEmpty else { return nil }
        let path = url.path + (url.query.map { "?" + $0 } ?? "")
        return path.hasPrefix("/") && !path.hasPrefix("//") ? path : nil
    }

    /// A path segment as it was meant (`/types/report%3Adaily` names `report:daily`).
    static func parameter(_ context: Context, _ name: String) -> String {
        let raw = context.parameters.get(name) ?? ""
        return raw.removingPercentEncoding ?? raw
    }

    static let maxFormBytes = 1 << 20

    static func form(_ request: Request) async throws -> FormFields {
        var request = request
        let buffer = try await request.collectBody(upTo: maxFormBytes)
        return FormFields(Substring(String(buffer: buffer)))
    }
}
