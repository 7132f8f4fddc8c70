import GantryProtocol
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import ServiceLifecycle

/// The broker's HTTP side: the dashboard (`Dashboard/`), and for probes and Prometheus `/live` (the process
/// serves), `/ready` (the database answers and its schema is current; not while draining) and `/metrics` (an
/// admin token as a bearer token, when the broker has tokens), each one line of text. TLS as on the JSON-RPC port.
public struct HTTPService: Service {
    let broker: Broker
    let host: String
    let port: Int
    let logger: Logger
    let onBound: @Sendable (SocketAddress) -> Void

    public init(broker: Broker, host: String, port: Int, logger: Logger, onBound: @escaping @Sendable (SocketAddress) -> Void = { _ in }) {
        self.broker = broker
        self.host = host
        self.port = port
        self.logger = logger
        self.onBound = onBound
    }

    public func run() async throws {
        let router = Router(context: PeerRequestContext.self)
        let broker = self.broker
        router.get("live") { _, _ in Self.line("live", status: .ok) }
        router.get("ready") { _, _ in
            let readiness = await broker.readiness()
            return Self.line(readiness.reason, status: readiness.ready ? .ok : .serviceUnavailable)
        }
        router.get("metrics") { request, _ in
            if let refusal = Self.refuseWithoutAdminToken(request, broker: broker) { return refusal }
            await broker.refreshQueueMetrics()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: broker.metrics.render())))
        }
        Dashboard(broker: broker).register(on: router)
        let (logger, onBound) = (logger, onBound)
        let server: HTTPServerBuilder = try broker.configuration.tls.map { try .tls(.http1(), tlsConfiguration: $0.serverConfiguration()) } ?? .http1()
        let app = Application(
            router: router,
            server: server,
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "gantryd"),
            onServerRunning: { channel in
                guard let address = channel.localAddress else { return }
                logger.info("listening for HTTP", metadata: ["address": "\(address.ipAddress ?? "?"):\(address.port ?? 0)"])
                onBound(address)
            },
            logger: logger)
        try await app.run()
    }

    /// `Authorization: Bearer <admin token>`, as Prometheus sends with `authorization: {credentials: …}`.
    private static func refuseWithoutAdminToken(_ request: Request, broker: Broker) -> Response? {
        guard broker.authenticator.isEnabled else { return nil }
        let header = request.headers[.authorization] ?? ""
        let presented = header.hasPrefix("Bearer ") ? String(header.dropFirst("Bearer ".count)) : nil
        guard let presented, let token = broker.authenticator.authenticate(presented) else {
            var response = line("unauthorized: send an admin token as Authorization: Bearer <token>", status: .unauthorized)
            response.headers[.wwwAuthenticate] = #"Bearer realm="gantry""#
            return response
        }
        guard token.role == .admin else {
            return line("forbidden: the token \(token.name) has the role \(token.role.rawValue); /metrics needs an admin token", status: .forbidden)
        }
        return nil
    }

    private static func line(_ text: String, status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: text + "\n")))
    }
}

extension Broker {
    /// Ready means: not draining, the database answers, and its schema is the one this broker was built for.
    public func readiness() async -> (ready: Bool, reason: String) {
        if isDraining { return (false, "draining: shutting down, taking no new work") }
        let needed = Migration.all.last?.version ?? 0
        do {
            let version = try await brokerStore.schemaVersion()
            guard version >= needed else {
                return (false, "migrations pending: the database's schema is at version \(version), this broker needs \(needed) (run gantryd migrate, or start gantryd without --no-migrate)")
            }
            return (true, "ready")
        } catch {
            return (false, "database unavailable: \(Self.describe(error, logger: logger, method: "ready").message)")
        }
    }

    /// The queue gauges come from the database's counters, read when Prometheus scrapes.
    func refreshQueueMetrics() async {
        if let queues = try? await queues.stats() { metrics.record(queues) }
        if let counters = try? await operationStore.counters() { metrics.record(operations: counters) }
    }
}
