import CoreMetrics
import Foundation
import Logging
import GantryProtocol
import Hummingbird

extension DashboardPages {
    func login(query: FormFields, problem: String? = nil, status: HTTPResponse.Status = .ok) -> Response {
        guard broker.authenticator.isEnabled else { return DashboardView.redirect("/") }
        let model: [String: Any] = ["next": Self.safeNext(query["next"]), "problem": problem as Any]
        let html = DashboardView.render("login", model)
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    func signIn(form: FormFields) async throws -> Response {
        guard broker.authenticator.isEnabled else { return DashboardView.redirect("/") }
        let access = DashboardAccess(broker: broker)
        switch try await access.signIn(token: form["token"] ?? "") {
        case .refused(let problem):
            broker.metrics.authenticationFailures.increment()
            broker.logger.warning("dashboard sign-in refused", metadata: ["problem": "\(problem)"])
            return login(query: FormFields([("next", form["next"] ?? "/")]), problem: problem, status: .unauthorized)
        case .signedIn(let cookie, let user):
            try? await broker.dashboardStore.record(actor: user.name, action: "sign_in", target: "dashboard", details: nil, outcome: "ok")
            var response = DashboardView.redirect(Self.safeNext(form["next"]))
            response.setCookie(cookie)
            return response
        }
    }

    func signOut(user: DashboardUser, form: FormFields) async throws -> Response {
        if let refusal = DashboardAccess(broker: broker).checkCSRF(user, form: form) { return refusal }
        if case .session(let id) = user.credential {
            try await broker.dashboardStore.deleteSession(id: id)
            try? await broker.dashboardStore.record(actor: user.name, action: "sign_out", target: "dashboard", details: nil, outcome: "ok")
        }
        var response = DashboardView.redirect("/login")
        response.setCookie(Cookie(name: DashboardAccess.sessionCookie, value: "", maxAge: 0, path: "/", httpOnly: true, sameSite: .strict))
        return response
    }

    /// Only a path on this site: a sign-in link must not send anyone elsewhere.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.contains("\\"),
              // Browsers drop tabs and line ends inside URLs: "/\t/evil.example" would become "//evil.example".
              !next.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) else { return "/" }
        return next
    }
}
