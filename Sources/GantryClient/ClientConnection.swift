import Foundation
import GantryProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOFoundationCompat
import NIOPosix
import NIOSSL

/// The connection is gone; requests that were waiting on it fail with this. `GantryClient` reconnects on the
/// next call. Leases held through the lost connection are gone too (the broker has put those jobs back).
public struct ConnectionLost: Error, CustomStringConvertible {
    public let description: String
}

/// One TCP connection to a broker: writes requests, matches response lines to waiting callers by id, so many
/// requests can be in flight at once and answered in any order.
final class ClientConnection: Sendable {
    private let channel: any Channel
    private let pending: PendingRequests

    private init(channel: any Channel, pending: PendingRequests) {
        self.channel = channel
        self.pending = pending
    }

    static func connect(host: String, port: Int, tls: NIOSSLContext?, maxLineBytes: Int,
                        onNotification: @escaping @Sendable (String) -> Void) async throws -> ClientConnection {
        let pending = PendingRequests()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        // SNI only for names: an address is checked against the certificate's IP entries.
                        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: isAddress ? nil : host))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: maxLineBytes))
                    try channel.pipeline.syncOperations.addHandler(ResponseRouter(pending: pending, onNotification: onNotification))
                }
            }
            .connect(host: host, port: port).get()
        return ClientConnection(channel: channel, pending: pending)
    }

    var isActive: Bool { channel.isActive }

    /// Sends one request line and waits for the response with its id.
    func send(id: Int64, line: ByteBuffer) async throws -> RPCResponse {
        try await withCheckedThrowingContinuation { continuation in
            if let closedBy = pending.add(id: id, continuation) {
                continuation.resume(throwing: closedBy)
                return
            }
            channel.writeAndFlush(line).whenFailure { error in
                self.pending.fail(id: id, with: ConnectionLost(description: "could not send to the broker: \(error)"))
            }
        }
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// Callers waiting for a response, by request id.
final class PendingRequests: Sendable {
    private struct State {
        var waiting: [Int64: CheckedContinuation<RPCResponse, any Error>] = [:]
        /// Why the connection closed, once it has: what a request sent afterwards fails with.
        var closedBy: (any Error)?
    }

    private let state = NIOLockedValueBox(State())

    /// Waits for the response to `id`; returns the error instead when the connection is already closed.
    func add(id: Int64, _ continuation: CheckedContinuation<RPCResponse, any Error>) -> (any Error)? {
        state.withLockedValue {
            if let closedBy = $0.closedBy { return closedBy }
            $0.waiting[id] = continuation
            return nil
        }
    }

    func resolve(_ response: RPCResponse) {
        guard case .number(let id)? = response.id else { return }
        let continuation = state.withLockedValue { $0.waiting.removeValue(forKey: id) }
        continuation?.resume(returning: response)
    }

    func fail(id: Int64, with error: any Error) {
        state.withLockedValue { $0.waiting.removeValue(forKey: id) }?.resume(throwing: error)
    }

    func failAll(with error: any Error) {
        let waiting = state.withLockedValue { state in
            // The first reason sticks: a TLS failure is followed by the channel going inactive.
            if state.closedBy == nil { state.closedBy = error }
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for continuation in waiting { continuation.resume(throwing: error) }
    }
}

/// Decodes each response line and hands it to whoever waits for its id; notifications from the broker (no id,
/// a method) go to `onNotification`.
final class ResponseRouter: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    let pending: PendingRequests
    let onNotification: @Sendable (String) -> Void

    init(pending: PendingRequests, onNotification: @escaping @Sendable (String) -> Void) {
        self.pending = pending
        self.onNotification = onNotification
    }

    private struct Notification: Decodable {
        var method: String
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        // Lines that are neither (or are for nobody) are ignored.
        guard let value = line.withUnsafeReadableBytes({ try? JSONReader.read($0) }) else { return }
        if let response = try? JSONValueDecoder.decode(RPCResponse.self, from: value), response.id != nil {
            pending.resolve(response)
        } else if let notification = try? JSONValueDecoder.decode(Notification.self, from: value) {
            onNotification(notification.method)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        pending.failAll(with: ConnectionLost(description: "the broker closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOSSLError || error is BoringSSLError {
            pending.failAll(with: TLSFailure(description: "TLS with the broker failed (\(error)). If its certificate is signed by your own CA, give that CA's file (--ca-file, GANTRY_CA_FILE); if it asks for a client certificate, give yours (--cert-file and --key-file)."))
        } else {
            pending.failAll(with: ConnectionLost(description: "the connection failed: \(error)"))
        }
        context.close(promise: nil)
    }
}
