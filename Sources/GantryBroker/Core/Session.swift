import Foundation
import GantryProtocol
import Synchronization

/// One client connection as the broker sees it: its id, what it said in `hello`, and the leases it holds.
public final class Session: Sendable {
    public let id: UUID
    public let peer: String
    private let state: Mutex<State>

    struct State {
        var hello: Hello.Params?
        var leases = SessionLeases()
        /// Set once it has reserved anything, so closing it knows whether leases may need putting back.
        var hasReserved = false
        var closing = false
        /// Long-poll waits in progress, so closing the session can end them at once.
        var tickets: Set<Waitlist.Ticket> = []
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

    func willReserve() { state.withLock { $0.hasReserved = true } }

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
    func finished(_ id: String) { state.withLock { _ = $0.leases.finished(id) } }

    /// Marks the session as going away; returns the waits to end.
    func beginClosing() -> Set<Waitlist.Ticket> {
        state.withLock { state in
            state.closing = true
            defer { state.tickets.removeAll() }
            return state.tickets
        }
    }

    /// Forgets the leases (the broker puts them back); returns whether it was a worker, for the broker's counts.
    func close() -> Bool {
        state.withLock {
            $0.closing = true
            $0.leases.removeAll()
            return $0.hello?.worker != nil
        }
    }
}
