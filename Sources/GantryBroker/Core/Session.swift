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

/// One client connection as the broker sees it: its id, what it said in `hello`, and the leases it holds.
public final class Session: Sendable {
    public let id: UUID
    public let peer: String
    public let connectedAt = Date()
    private let state: Mutex<State>

    struct State {
        var link: SessionLink?
        var lastSeenAt = Date()
        /// What an operator last told this worker (`workers.quiet` / `workers.stop`).
        var workerState = WorkerInfo.State.running
        var hello: Hello.Params?
        var leases = SessionLeases()
        /// Set once it has reserved anything, so closing it knows whether leases may need putting back.
        var hasReserved = false
        var closing = false
        /// Long-poll waits in progress, so closing the session can end them at once.
        var tickets: Set<Waitlist.Ticket> = []
        /// The token its `hello` presented, when the broker checks tokens.
        var access: AccessToken?
        var failedHellos = 0
        /// Set when the connection is to be closed once the answer being written has gone out.
        var closeAfterAnswer = false
    }

    public init(id: UUID = UUID(), peer: String) {
        self.id = id
        self.peer = peer
        self.state = Mutex(State())
    }

    /// The worker id it announced in `hello`, if any: recorded with the errors of its attempts.
    public var workerID: String? { state.withLock { $0.hello?.worker?.id } }
    public var hasReserved: Bool { state.withLock { $0.hasReserved } }
    public var isClosing: Bool { state.withLock { $0.closing } }
    public var leaseCount: Int { state.withLock { $0.leases.count } }

    func greeted(_ hello: Hello.Params) -> (wasWorker: Bool, isWorker: Bool) {
        state.withLock {
            let wasWorker = $0.hello?.worker != nil
            $0.hello = hello
            return (wasWorker, hello.worker != nil)
        }
    }

    /// Whether an operator told this worker to take nothing new.
    public var isQuiet: Bool { state.withLock { $0.workerState != .running } }

    func willReserve() { state.withLock { $0.hasReserved = true } }

    func attach(_ link: SessionLink) { state.withLock { $0.link = link } }

    func sawRequest() { state.withLock { $0.lastSeenAt = Date() } }

    /// The worker as operators see it; nil for a connection that did not say it is a worker, or is closing.
    func workerInfo(brokerID: String) -> WorkerInfo? {
        state.withLock { state in
            guard let hello = state.hello, let worker = hello.worker, !state.closing else { return nil }
            return WorkerInfo(
                id: worker.id, sessionID: id.wireString, brokerID: brokerID, peer: peer, client: hello.client,
                queues: worker.queues, concurrency: worker.concurrency, handlers: worker.handlers.map(\.type),
                jobsHeld: state.leases.count, state: state.workerState, connectedAt: connectedAt, lastSeenAt: state.lastSeenAt)
        }
    }

    /// Records what the worker is told and sends it the notification; false when this is no worker or the
    /// connection is already going away.
    func tell(_ notification: WorkerNotification) async -> Bool {
        let link: SessionLink? = state.withLock { state in
            guard state.hello?.worker != nil, !state.closing else { return nil }
            switch notification {
            case .quiet: if state.workerState == .running { state.workerState = .quiet }
            case .stop: state.workerState = .stopping
            }
            return state.link
        }
        guard let link else { return false }
        await link.send(Data(#"{"jsonrpc":"2.0","method":"\#(notification.rawValue)"}"#.utf8))
        return true
    }

    /// The token this connection authenticated with, if any.
    var access: AccessToken? { state.withLock { $0.access } }

    func authenticated(_ token: AccessToken) {
        state.withLock {
            $0.access = token
            $0.failedHellos = 0
        }
    }

    /// Counts a failed `hello`; returns how many in a row.
    func failedToAuthenticate() -> Int {
        state.withLock {
            $0.access = nil
            $0.failedHellos += 1
            return $0.failedHellos
        }
    }

    /// Asks the connection to close after it writes the answer in progress.
    func closeAfterAnswer() { state.withLock { $0.closeAfterAnswer = true } }
    var mustCloseAfterAnswer: Bool { state.withLock { $0.closeAfterAnswer } }

    /// Hangs up on the client (a stopped worker that did not leave).
    func disconnect() { state.withLock { $0.link }?.disconnect() }

    /// Records a long-poll wait; false when the session is already closing and should not wait at all.
    func waiting(_ ticket: Waitlist.Ticket) -> Bool {
        state.withLock {
            guard !$0.closing else { return false }
            $0.tickets.insert(ticket)
            return true
        }
    }

    func doneWaiting(_ ticket: Waitlist.Ticket) { state.withLock { _ = $0.tickets.remove(ticket) } }
    func reserved(_ jobs: [ReservedJob]) { state.withLock { $0.leases.reserved(jobs) } }
    func lease(for id: String) -> SessionLeases.Lease? { state.withLock { $0.leases.lease(for: id) } }
    @discardableResult
    func finished(_ id: String) -> SessionLeases.Lease? { state.withLock { $0.leases.finished(id) } }

    /// Marks the session as going away; returns the waits to end.
    func beginClosing() -> Set<Waitlist.Ticket> {
        state.withLock { state in
            state.closing = true
            defer { state.tickets.removeAll() }
            return state.tickets
        }
    }

    /// Forgets the leases (the broker puts them back); answers whether it was a worker, for the broker's counts.
    func closeAndReportWhetherWorker() -> Bool {
        state.withLock {
            $0.closing = true
            $0.leases.removeAll()
            return $0.hello?.worker != nil
        }
    }
}
