import Foundation
import GantryProtocol

/// The rules of one client connection, as a value: each event it goes through (hello, a failed token, a reserve,
/// a wait, an ack, an operator's order, closing) changes it and returns what the broker must do about it. No
/// locks and no sockets, so every rule is unit-tested on its own (`SessionStateTests`); `Session` holds one
/// behind a lock.
public struct SessionState: Sendable {
    /// How many failed `hello`s in a row a connection gets before it is closed.
    public static let helloAttempts = 3

    public private(set) var hello: Hello.Params?
    /// What an operator last told this worker (`workers.quiet` / `workers.stop`).
    public private(set) var workerState = WorkerInfo.State.running
    public private(set) var leases = SessionLeases()
    /// Set once it has reserved anything, so closing it knows whether leases may need putting back.
    public private(set) var hasReserved = false
    public private(set) var isClosing = false
    /// Long-poll waits in progress, so closing the session can end them at once.
    public private(set) var waits: Set<Waitlist.Ticket> = []
    /// The token its `hello` presented, when the broker checks tokens.
    public private(set) var access: AccessToken?
    public private(set) var failedHellos = 0
    /// Set when the connection is to be closed once the answer being written has gone out.
    public private(set) var mustCloseAfterAnswer = false
    public private(set) var lastSeenAt: Date

    public init(now: Date = Date()) { lastSeenAt = now }

    public var isWorker: Bool { hello?.worker != nil }
    public var workerID: String? { hello?.worker?.id }
    /// Told by an operator to take nothing new.
    public var isQuiet: Bool { workerState != .running }

    /// What a `hello` changes in the broker's count of workers.
    public struct WorkerChange: Equatable, Sendable {
        public var wasWorker: Bool
        public var isWorker: Bool
    }

    public mutating func greeted(_ hello: Hello.Params) -> WorkerChange {
        let wasWorker = isWorker
        self.hello = hello
        return WorkerChange(wasWorker: wasWorker, isWorker: isWorker)
    }

    public mutating func authenticated(_ token: AccessToken) {
        access = token
        failedHellos = 0
    }

    /// A `hello` with a missing or unknown token: returns how many in a row; at `helloAttempts` the connection
    /// is to close after its answer.
    public mutating func failedToAuthenticate() -> Int {
        access = nil
        failedHellos += 1
        if failedHellos >= Self.helloAttempts { mustCloseAfterAnswer = true }
        return failedHellos
    }

    public mutating func sawRequest(at now: Date = Date()) { lastSeenAt = now }

    public mutating func willReserve() { hasReserved = true }

    /// A reserve is about to park: false when the session is closing and it should not wait at all.
    public mutating func startWaiting(_ ticket: Waitlist.Ticket) -> Bool {
        guard !isClosing else { return false }
        waits.insert(ticket)
        return true
    }

    public mutating func stopWaiting(_ ticket: Waitlist.Ticket) { waits.remove(ticket) }

    public mutating func reserved(_ jobs: [ReservedJob], at now: ContinuousClock.Instant = .now) {
        leases.reserved(jobs, at: now)
    }

    /// An ack or nack landed: the lease it ended, if this session held it.
    @discardableResult
    public mutating func finished(_ id: String) -> SessionLeases.Lease? { leases.finished(id) }

    /// An operator's order: whether to send it (only to a worker whose connection is not going away).
    public mutating func told(_ order: WorkerNotification) -> Bool {
        guard isWorker, !isClosing else { return false }
        switch order {
        case .quiet: if workerState == .running { workerState = .quiet }
        case .stop: workerState = .stopping
        }
        return true
    }

    /// The client is gone or done sending: returns the waits to end now.
    public mutating func beginClosing() -> Set<Waitlist.Ticket> {
        isClosing = true
        defer { waits.removeAll() }
        return waits
    }

    /// What the broker does once the connection has closed.
    public struct Closed: Equatable, Sendable {
        /// It said it was a worker: one fewer in the broker's count.
        public var wasWorker: Bool
        /// It reserved jobs: those it still holds go back (the database knows which).
        public var putBackJobs: Bool
    }

    /// The connection closed: the leases are forgotten here (the broker puts them back in the database).
    public mutating func closed() -> Closed {
        isClosing = true
        leases.removeAll()
        return Closed(wasWorker: isWorker, putBackJobs: hasReserved)
    }
}
