import Foundation
import GantryProtocol
import Synchronization

/// How the broker reaches a session's client on its own initiative: a line to send, or hanging up.
public struct SessionLink: Sendable {
    let send: @Sendable (Data) async -> Void
    let disconnect: @Sendable () -> Void

    public init(send: @escaping @Sendable (Data) async -> Void, disconnect: @escaping @Sendable () -> Void) {
        self.send = send
        self.disconnect = disconnect
    }
}

/// One client connection as the broker sees it: its id and peer, the link to reach it, and its `SessionState`
/// (what it said in `hello`, the leases it holds, its waits) behind a lock, since its requests run at once.
public final class Session: Sendable {
    public let id: UUID
    public let peer: String
    public let connectedAt = Date()
    private let state = Mutex(SessionState())
    private let link = Mutex<SessionLink?>(nil)
    /// The lifecycle events this connection asked to hear (`watch`); nil when it watches nothing.
    private let watching = Mutex<WatchFilter?>(nil)

    public init(id: UUID = UUID(), peer: String) {
        self.id = id
        self.peer = peer
    }

    /// Applies one event to the state and returns what it says to do.
    func update<Action>(_ event: (inout SessionState) -> Action) -> Action { state.withLock { event(&$0) } }

    /// The state as it is now.
    var current: SessionState { state.withLock { $0 } }

    public var workerID: String? { state.withLock { $0.workerID } }
    public var isClosing: Bool { state.withLock { $0.isClosing } }
    public var isQuiet: Bool { state.withLock { $0.isQuiet } }
    public var leaseCount: Int { state.withLock { $0.leases.count } }
    var access: AccessToken? { state.withLock { $0.access } }

    func attach(_ link: SessionLink) { self.link.withLock { $0 = link } }

    /// The worker as operators see it; nil for a connection that did not say it is a worker, or is closing.
    func workerInfo(brokerID: String) -> WorkerInfo? {
        let state = current
        guard let hello = state.hello, let worker = hello.worker, !state.isClosing else { return nil }
        return WorkerInfo(
            id: worker.id, sessionID: id.wireString, brokerID: brokerID, peer: peer, client: hello.client,
            queues: worker.queues, concurrency: worker.concurrency, handlers: worker.handlers.map(\.type),
            jobsHeld: state.leases.count, state: state.workerState, connectedAt: connectedAt, lastSeenAt: state.lastSeenAt)
    }

    /// Records what the worker is told and sends it the notification; false when this is no worker or the
    /// connection is already going away.
    func tell(_ order: WorkerNotification) async -> Bool {
        guard update({ $0.told(order) }), let link = link.withLock({ $0 }) else { return false }
        await link.send(Data(#"{"jsonrpc":"2.0","method":"\#(order.rawValue)"}"#.utf8))
        return true
    }

    func watch(_ filter: WatchFilter?) { watching.withLock { $0 = filter } }

    /// Sends a lifecycle event's notification line when this connection watches it.
    func hear(event: String, queue: String?, line: Data) async {
        guard watching.withLock({ $0?.matches(event: event, queue: queue) == true }), let link = link.withLock({ $0 }) else { return }
        await link.send(line)
    }

    /// Hangs up on the client (a stopped worker that did not leave).
    func disconnect() { link.withLock { $0 }?.disconnect() }
}
