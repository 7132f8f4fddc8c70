import Hummingbird
import NIOCore

/// Hummingbird's basic context plus who is asking: a broker without tokens opens its dashboard to loopback peers
/// only.
public struct PeerRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// Whether the request came over loopback (127.0.0.0/8, ::1) or a Unix socket.
    var fromLoopback: Bool {
        guard let remoteAddress else { return false }
        switch remoteAddress {
        case .unixDomainSocket: return true
        case .v4(let address): return address.host.hasPrefix("127.")
        case .v6(let address): return address.host == "::1" || address.host.hasPrefix("::ffff:127.")
        }
    }
}
