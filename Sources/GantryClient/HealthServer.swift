import NIOCore
import NIOHTTP1
import NIOPosix

/// A worker's health endpoints for its supervisor (Kubernetes probes, systemd, a load balancer): `GET /live`
/// answers 200 while the worker's loop runs and 503 once it is stuck; `GET /ready` 200 while it is connected to a
/// broker and taking jobs, 503 otherwise. Each answers a small JSON object saying why.
final class HealthServer: Sendable {
    struct Status: Sendable {
        var live: Bool
        var ready: Bool
        var detail: String
    }

    private let channel: any Channel
    /// The port it listens on (useful when asked for port 0).
    let port: Int

    private init(channel: any Channel) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
    }

    static func start(host: String = "127.0.0.1", port: Int, status: @escaping @Sendable () -> Status) async throws -> HealthServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(ProbeHandler(status: status))
                }
            }
            .bind(host: host, port: port).get()
        return HealthServer(channel: channel)
    }

    func stop() async {
        try? await channel.close()
    }

    private final class ProbeHandler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let status: @Sendable () -> Status
        private var path = ""

        init(status: @escaping @Sendable () -> Status) { self.status = status }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): path = head.method == .GET ? head.uri : ""
            case .body: break
            case .end:
                let now = status()
                let (code, body): (HTTPResponseStatus, String) = switch path {
                case "/live": (now.live ? .ok : .serviceUnavailable, #"{"live":\#(now.live),"detail":"\#(now.detail)"}"#)
                case "/ready": (now.ready ? .ok : .serviceUnavailable, #"{"ready":\#(now.ready),"detail":"\#(now.detail)"}"#)
                default: (.notFound, #"{"error":"GET /live or /ready"}"#)
                }
                var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(body.utf8.count)), ("Connection", "close")])
                headers.add(name: "Cache-Control", value: "no-store")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: code, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
            }
        }
    }
}
