import Crypto
import Foundation
import GantryProtocol
import Hummingbird

/// Who is looking at the dashboard, and what they may do. Without tokens (a broker on loopback) everyone is an
/// admin and the pages say so; with tokens, an admin or viewer token signs in (a session cookie) or comes as
/// `Authorization: Bearer` (scripts). Producer and worker tokens open nothing here.
struct DashboardUser: Sendable {
    enum Credential: Sendable {
        /// No tokens configured: the CSRF token is a cookie the form must repeat.
        case open
        case session(id: String)
        /// Sent with every request by a script, never by a browser on its own: no CSRF token needed.
        case bearer
    }

    var name: String
    var role: Role
    var csrf: String
    var credential: Credential

    var mayAct: Bool { role == .admin }
    var isOpen: Bool { if case .open = credential { true } else { false } }
}

struct DashboardAccess: Sendable {
    let broker: Broker
    static let sessionCookie = "gantry_session"
    static let csrfCookie = "gantry_csrf"

    enum Outcome: Sendable {
        case user(DashboardUser)
        /// The answer to send instead: a sign-in page, a redirect, a refusal.
        case refused(Response)
    }

    /// The user behind a request, or why there is none.
    func resolve(_ request: Request, context: PeerRequestContext) async throws -> Outcome {
        guard broker.authenticator.isEnabled else {
            // Without tokens everyone is an admin: only this machine may be everyone. The Host check keeps a web
            // page from elsewhere (DNS rebinding) from driving a browser's loopback dashboard.
            guard context.fromLoopback, Self.isLoopbackHost(request.head.authority ?? "") else {
                return .refused(DashboardView.plain(
                    "forbidden: this broker has no tokens, so its dashboard answers only on this machine (127.0.0.1 or localhost); configure tokens (gantry token new --role admin) to open it to others",
                    status: .forbidden))
            }
            let csrf = request.cookies[Self.csrfCookie]?.value ?? ""
            return .user(DashboardUser(name: "anyone (no tokens)", role: .admin, csrf: csrf, credential: .open))
        }
        if let header = request.headers[.authorization] {
            guard header.hasPrefix("Bearer "), let token = broker.authenticator.authenticate(String(header.dropFirst("Bearer ".count))) else {
                return .refused(DashboardView.plain(
                    "unauthorized: send Authorization: Bearer <an admin or viewer token this broker knows>, or leave the header out and sign in at /login",
                    status: .unauthorized))
            }
            guard token.role == .admin || token.role == .viewer else {
                return .refused(DashboardView.plain(
                    "forbidden: the token \(token.name) has the role \(token.role.rawValue); the dashboard takes admin and viewer tokens",
                    status: .forbidden))
            }
            return .user(DashboardUser(name: token.name, role: token.role, csrf: "", credential: .bearer))
        }
        if let sessionID = request.cookies[Self.sessionCookie]?.value, let signedIn = try await broker.dashboardStore.session(id: sessionID) {
            // The token as configured now decides: a token removed from the config signs its sessions out, and
            // one whose role changed acts with its new role.
            if let token = broker.authenticator.tokens.first(where: { $0.name == signedIn.tokenName }), token.role == .admin || token.role == .viewer {
                return .user(DashboardUser(name: token.name, role: token.role, csrf: signedIn.csrf, credential: .session(id: sessionID)))
            }
            try await broker.dashboardStore.deleteSession(id: sessionID)
        }
        if request.method == .get {
            let next = FormFields.encode(request.uri.path + (request.uri.query.map { "?" + $0 } ?? ""))
            return .refused(Response(status: .seeOther, headers: [.location: "/login?next=\(next)"]))
        }
        return .refused(DashboardView.plain("unauthorized: sign in at /login, or send Authorization: Bearer <admin token>", status: .unauthorized))
    }

    /// A state-changing request from a browser must carry the CSRF token its page was rendered with.
    func checkCSRF(_ user: DashboardUser, form: FormFields) -> Response? {
        if case .bearer = user.credential { return nil }
        guard let sent = form["csrf"], !user.csrf.isEmpty, ConstantTime.equal(sent.utf8, user.csrf.utf8) else {
            return DashboardView.plain(
                "forbidden: this form's CSRF token is missing or stale; reload the page and submit again", status: .forbidden)
        }
        return nil
    }

    /// `localhost`, an address in 127.0.0.0/8 or `[::1]`, with any port (never a name such as `127.evil.example`).
    static func isLoopbackHost(_ authority: String) -> Bool {
        var host = authority.lowercased()
        if host.hasPrefix("[") {
            return host.hasPrefix("[::1]")
        }
        if let colon = host.lastIndex(of: ":") { host = String(host[..<colon]) }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        let loopbackAddress = octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
        return host == "localhost" || loopbackAddress
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Signs a token in: a session row, an HttpOnly SameSite=Strict cookie.
    enum SignIn: Sendable {
        case signedIn(cookie: Cookie, user: DashboardUser)
        case refused(String)
    }

    func signIn(token presented: String) async throws -> SignIn {
        guard let token = broker.authenticator.authenticate(presented) else { return .refused("That token is not one this broker knows.") }
        guard token.role == .admin || token.role == .viewer else {
            return .refused("The token \(token.name) has the role \(token.role.rawValue); the dashboard takes admin and viewer tokens.")
        }
        let (id, csrf) = (Self.randomToken(), Self.randomToken())
        let lifetime = broker.configuration.dashboardSessionLifetime
        try await broker.dashboardStore.createSession(id: id, tokenName: token.name, role: token.role, csrf: csrf, lifetime: lifetime)
        let cookie = Cookie(name: Self.sessionCookie, value: id, maxAge: Int(lifetime.components.seconds), path: "/",
                            secure: broker.configuration.tls != nil, httpOnly: true, sameSite: .strict)
        return .signedIn(cookie: cookie, user: DashboardUser(name: token.name, role: token.role, csrf: csrf, credential: .session(id: id)))
    }
}
