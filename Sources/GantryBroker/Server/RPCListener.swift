import Logging
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// Accepts client connections and serves newline-delimited JSON-RPC on each. On graceful shutdown it stops
/// accepting, lets connections finish what they hold for `drainGrace`, then closes the rest.
public struct RPCListener: Service {
    let broker: Broker
    let logger: Logger
    let onBound: @Sendable (SocketAddress) -> Void
    private let registry = ConnectionRegistry()
    private let unserved = UnservedConnections()

    public init(broker: Broker, logger: Logger, onBound: @escaping @Sendable (SocketAddress) -> Void = { _ in }) {
        self.broker = broker
        self.logger = logger
        self.onBound = onBound
    }

    public func run() async throws {
        let configuration = broker.configuration
        let tls = try configuration.tls.map { try NIOSSLContext(configuration: $0.serverConfiguration()) }
        let unserved = self.unserved
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(
                        PartialLineTimeout(timeout: TimeAmount(configuration.partialLineTimeout)))
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: configuration.maxLineBytes))
                    let connection = try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(isOutboundHalfClosureEnabled: false))
                    unserved.add(connection)
                    return connection
                }
            }
        if let address = server.channel.localAddress {
            logger.info("listening for JSON-RPC", metadata: ["address": "\(address.ipAddress ?? "?"):\(address.port ?? 0)"])
            onBound(address)
        }
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await closeIdleConnections() }
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        unserved.remove(connection)
                        let address = connection.channel.remoteAddress?.ipAddress ?? "unknown"
                        let session = Session(peer: connection.channel.remoteAddress.map { "\(address):\($0.port ?? 0)" } ?? "unknown")
                        group.addTask {
                            await RPCConnection(
                                channel: connection, broker: broker, session: session, address: address, registry: registry, logger: logger
                            ).run()
                        }
                    }
                }
                // No longer accepting; the group now waits for the open connections to finish.
                for connection in unserved.takeAll() {
                    group.addTask { try? await connection.executeThenClose { _, _ in } }
                }
            }
        } onGracefulShutdown: {
            logger.info("draining: no new jobs handed out; waiting for workers to ack what they hold",
                        metadata: ["connections": "\(registry.count)", "grace": "\(configuration.drainGrace)"])
            broker.beginDrain()
            server.channel.close(promise: nil)
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

/// Connections accepted but not yet taken by the accept loop. One accepted while the listener shuts down (or
/// after its loop was cancelled) is dropped by NIO's server channel before anyone serves it, and an
/// `NIOAsyncChannel` dropped without `executeThenClose` stops the process (swift-nio#2813: "Deinited
/// NIOAsyncWriter without calling finish()"; seen when a client connected just as SIGTERM arrived). Held here
/// until served, such a connection is never dropped: the listener closes what is left when its loop ends.
final class UnservedConnections: Sendable {
    private let waiting = Mutex<[ObjectIdentifier: NIOAsyncChannel<ByteBuffer, ByteBuffer>]>([:])

    func add(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        waiting.withLock { $0[ObjectIdentifier(connection.channel)] = connection }
    }

    func remove(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        _ = waiting.withLock { $0.removeValue(forKey: ObjectIdentifier(connection.channel)) }
    }

    func takeAll() -> [NIOAsyncChannel<ByteBuffer, ByteBuffer>] {
        waiting.withLock { waiting in
            defer { waiting.removeAll() }
            return Array(waiting.values)
        }
    }
}
