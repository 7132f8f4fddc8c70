import GantryProtocol
import Synchronization

/// This broker's copy of every queue's limits, as last read from Postgres, so a claim knows without a query
/// whether any of its queues is limited (nearly never).
final class KnownQueueLimits: Sendable {
    private let limits = Mutex<[String: QueueLimit]>([:])

    /// The queues among these that have limits.
    func limited(among queues: [String]) -> Set<String> {
        limits.withLock { limits in limits.isEmpty ? [] : Set(queues.filter { limits[$0] != nil }) }
    }

    func hasConcurrencyLimit(_ queue: String) -> Bool {
        limits.withLock { $0[queue]?.concurrency != nil }
    }

    func replace(with fresh: [String: QueueLimit]) {
        limits.withLock { $0 = fresh }
    }
}
