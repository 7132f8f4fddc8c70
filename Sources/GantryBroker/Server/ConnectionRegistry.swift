import Foundation
import NIOCore
import Synchronization

/// The open connections, so a draining broker can close each as soon as it has nothing left to answer, and
/// connections beyond the limits or idle too long can be turned away. Closing means closing the input: the
/// connection then answers what it has started and closes itself, so no answer already earned (an ack's
/// "ok") is cut off.
final class ConnectionRegistry: Sendable {
    private struct Entry {
        var channel: any Channel
        var session: Session
        var address: String
        var inFlight = 0
        let openedAt = ContinuousClock.now
        var lastActive = ContinuousClock.now

        /// Nothing to answer and no job held: closing it now loses no one's work.
        var isIdle: Bool { inFlight <= 0 && session.leaseCount == 0 }
    }

    private struct State {
        var entries: [UUID: Entry] = [:]
        var perAddress: [String: Int] = [:]
        var draining = false
        /// Who waits for the last connection to close.
        var emptied: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    var count: Int { state.withLock { $0.entries.count } }

    /// Registers the connection, or says why it is one too many (then it is not registered).
    func opened(_ session: Session, channel: any Channel, address: String, maxTotal: Int, maxPerAddress: Int) -> String? {
        let (refusal, closeNow): (String?, Bool) = state.withLock {
            if $0.entries.count >= maxTotal { return ("\($0.entries.count) open, the limit is \(maxTotal)", false) }
            let fromAddress = $0.perAddress[address, default: 0]
            if fromAddress >= maxPerAddress { return ("\(fromAddress) open from \(address), the limit is \(maxPerAddress)", false) }
            $0.entries[session.id] = Entry(channel: channel, session: session, address: address)
            $0.perAddress[address] = fromAddress + 1
            return (nil, $0.draining)
        }
        if closeNow { Self.closeInput(of: channel) }
        return refusal
    }

    /// The connection closed and its session was closed down (its jobs put back).
    func closed(_ id: UUID) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard let entry = state.entries.removeValue(forKey: id) else { return [] }
            let left = state.perAddress[entry.address, default: 1] - 1
            state.perAddress[entry.address] = left > 0 ? left : nil
            guard state.entries.isEmpty else { return [] }
            defer { state.emptied.removeAll() }
            return state.emptied
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once no connection is open (each one's session closed down).
    func waitUntilEmpty() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                guard !state.entries.isEmpty else { return true }
                state.emptied.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Closes connections that have nothing running and sent nothing for `idleFor`, and, when `unauthenticatedFor`
    /// is given, those still without a token that long after opening. Returns how many it closed.
    @discardableResult
    func closeIdle(idleFor: Duration?, unauthenticatedFor: Duration?) -> Int {
        let now = ContinuousClock.now
        let stale = state.withLock { state in
            state.entries.values.filter { entry in
                guard entry.inFlight <= 0 else { return false }
                if let idleFor, now - entry.lastActive > idleFor { return true }
                if let unauthenticatedFor, entry.session.access == nil, now - entry.openedAt > unauthenticatedFor { return true }
                return false
            }.map(\.channel)
        }
        for channel in stale { channel.close(promise: nil) }
        return stale.count
    }

    func startedRequest(_ id: UUID) {
        state.withLock {
            $0.entries[id]?.inFlight += 1
            $0.entries[id]?.lastActive = .now
        }
    }

    func finishedRequest(_ id: UUID) {
        let idleWhileDraining: (any Channel)? = state.withLock {
            guard var entry = $0.entries[id] else { return nil }
            entry.inFlight -= 1
            entry.lastActive = .now
            $0.entries[id] = entry
            return $0.draining && entry.isIdle ? entry.channel : nil
        }
        if let idleWhileDraining { Self.closeInput(of: idleWhileDraining) }
    }

    /// Closes idle connections now; busy ones close once they have answered everything and hold no job.
    func drain() {
        let idle = state.withLock {
            $0.draining = true
            return $0.entries.values.filter(\.isIdle).map(\.channel)
        }
        for channel in idle { Self.closeInput(of: channel) }
    }

    /// The accept loop can hand over a connection before NIO has registered it on its event loop, and NIO traps
    /// (in debug builds) when such a connection's input is half-closed; seen when SIGTERM met a burst of
    /// connections. One not yet active has read nothing, so closing it whole loses nothing.
    private static func closeInput(of channel: any Channel) {
        channel.eventLoop.execute {
            if channel.isActive { channel.close(mode: .input, promise: nil) } else { channel.close(promise: nil) }
        }
    }

    func closeAll() {
        let all = state.withLock { $0.entries.values.map(\.channel) }
        for channel in all { channel.close(promise: nil) }
    }
}
