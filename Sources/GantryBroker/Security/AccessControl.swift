import CoreMetrics
import GantryProtocol
import Logging

/// When the broker has tokens: who may call what. Without tokens every connection may do everything.
extension Broker {
    /// Refuses a request the connection's token does not cover (before its params are read).
    func admit(_ request: RPCRequest, session: Session) -> RPCErrorObject? {
        guard authenticator.isEnabled, request.method != Hello.name else { return nil }
        guard let token = session.access else {
            return .unauthorized("This connection has not authenticated.")
        }
        guard token.role.mayCall(request.method) else {
            logger.notice("refused a method outside the token's role", metadata: [
                "session": "\(session.id)", "token": "\(token.name)", "role": "\(token.role.rawValue)", "method": "\(request.method)",
            ])
            return .forbidden(token: token.name, role: token.role.rawValue, method: request.method)
        }
        return nil
    }

    /// Refuses a request naming a queue outside the token's queues (the method table says which queues a
    /// request names).
    func checkQueues(_ named: @autoclosure () -> [String], method: String, session: Session) throws(RPCErrorObject) {
        // Without tokens (the common case) no request pays for the session's lock or for listing its queues.
        guard authenticator.isEnabled, let token = session.access, let allowed = token.queues else { return }
        if let refused = named().first(where: { !allowed.contains($0) }) {
            throw .forbidden(token: token.name, role: token.role.rawValue, method: method, queue: refused, allowedQueues: allowed.sorted())
        }
    }

    /// `hello`'s token check: on success the session takes the token's role; a connection that fails
    /// `SessionState.helloAttempts` times in a row is closed after the answer.
    func authenticate(_ params: Hello.Params, session: Session) throws(RPCErrorObject) {
        guard authenticator.isEnabled else { return }
        if let presented = params.token, let token = authenticator.authenticate(presented) {
            session.update { $0.authenticated(token) }
            return
        }
        let failures = session.update { $0.failedToAuthenticate() }
        metrics.authenticationFailures.increment()
        logger.warning("hello with a missing or unknown token", metadata: [
            "session": "\(session.id)", "peer": "\(session.peer)", "failures": "\(failures)",
        ])
        if failures >= SessionState.helloAttempts {
            throw .unauthorized("Unknown token; \(failures) failed attempts, so the connection is closed.")
        }
        throw .unauthorized(params.token == nil ? "hello carried no token." : "Unknown token.")
    }

    /// A job a queue-limited token may not see is reported as not found, so its existence is not revealed.
    func checkVisible(_ job: Job, session: Session) throws(RPCErrorObject) {
        if authenticator.isEnabled, let token = session.access, !token.mayUse(queue: job.queue) { throw .notFound(jobID: job.id) }
    }
}
