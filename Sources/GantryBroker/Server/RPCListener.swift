import Logging
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// Accepts client connections and serves newline-delimited JSON-RPC on each. On graceful shutdown it stops
/// accepting, lets connections finish what they hold for `drainGrace`, then closes the rest.
public struct RPCListener: Service {
    let broker: Broker
    let logger: Logger
    let onBound: @Sendable (SocketAddress) -> Void
    private let registry = ConnectionRegistry()

    public init(broker: Broker, logger: Logger, onBound: @escaping @Sendable (SocketAddress) -> Void = { _ in }) {
        self.broker = broker
        self.logger = logger
        self.onBound = onBound
    }

    public func run() async throws {
        let configuration = broker.configuration
        let tls = try configuration.tls.map { try NIOSSLContext(configuration: $0.serverConfiguration()) }
        let (broker, registry, logger) = (broker, registry, logger)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(
                        PartialLineTimeout(timeout: TimeAmount(configuration.partialLineTimeout)))
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: configuration.maxLineBytes))
                    try channel.pipeline.syncOperations.addHandler(RPCConnection(broker: broker, registry: registry, logger: logger))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        if let address = server.localAddress {
            logger.info("listening for JSON-RPC", metadata: ["address": "\(address.ipAddress ?? "?"):\(address.port ?? 0)"])
            onBound(address)
        }
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await closeIdleConnections() }
                // Until shutdown closes the server channel (or the task is cancelled), then until every connection
                // has answered what it holds and its session is closed down.
                await withTaskCancellationHandler {
                    try? await server.closeFuture.get()
                } onCancel: {
                    server.close(promise: nil)
                    registry.closeAll()
                }
                await registry.waitUntilEmpty()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            logger.info("draining: no new jobs handed out; waiting for workers to ack what they hold",
                        metadata: ["connections": "\(registry.count)", "grace": "\(configuration.drainGrace)"])
            broker.beginDrain()
            server.close(promise: nil)
            registry.drain()
            Task { [registry] in
                try? await Task.sleep(for: configuration.drainGrace)
                registry.closeAll()
            }
        }
    }

    /// Every second: closes connections idle past the idle timeout and, when tokens are required, those that have
    /// not authenticated within the authentication timeout of opening.
    private func closeIdleConnections() async {
        let configuration = broker.configuration
        let unauthenticated = broker.authenticator.isEnabled ? configuration.authenticationTimeout : nil
        guard configuration.idleTimeout != nil || unauthenticated != nil else { return }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .seconds(1))
            let closed = registry.closeIdle(idleFor: configuration.idleTimeout, unauthenticatedFor: unauthenticated)
            if closed > 0 { logger.info("closed idle connections", metadata: ["count": "\(closed)"]) }
        }
    }
}
