import Foundation
import NIOCore
import Synchronization

/// The open connections, so a draining broker can close each as soon as it has nothing left to answer.
/// Closing means closing the input: the connection then answers what it has started and closes itself, so
/// no answer already earned (an ack's "ok") is cut off.
final class ConnectionRegistry: Sendable {
    private struct Entry {
        var channel: any Channel
        var session: Session
        var inFlight = 0

        /// Nothing to answer and no job held: closing it now loses no one's work.
        var isIdle: Bool { inFlight <= 0 && session.leaseCount == 0 }
    }

    private struct State {
        var entries: [UUID: Entry] = [:]
        var draining = false
    }

    private let state = Mutex(State())

    var count: Int { state.withLock { $0.entries.count } }

    func opened(_ session: Session, channel: any Channel) {
        let closeNow = state.withLock {
            $0.entries[session.id] = Entry(channel: channel, session: session)
            return $0.draining
        }
        if closeNow { channel.close(mode: .input, promise: nil) }
    }

    func closed(_ id: UUID) {
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }

    func startedRequest(_ id: UUID) {
        state.withLock { $0.entries[id]?.inFlight += 1 }
    }

    func finishedRequest(_ id: UUID) {
        let idleWhileDraining: (any Channel)? = state.withLock {
            guard var entry = $0.entries[id] else { return nil }
            entry.inFlight -= 1
            $0.entries[id] = entry
            return $0.draining && entry.isIdle ? entry.channel : nil
        }
        idleWhileDraining?.close(mode: .input, promise: nil)
    }

    /// Closes idle connections now; busy ones close once they have answered everything and hold no job.
    func drain() {
        let idle = state.withLock {
            $0.draining = true
            return $0.entries.values.filter(\.isIdle).map(\.channel)
        }
        for channel in idle { channel.close(mode: .input, promise: nil) }
    }

    func closeAll() {
        let all = state.withLock { $0.entries.values.map(\.channel) }
        for channel in all { channel.close(promise: nil) }
    }
}
