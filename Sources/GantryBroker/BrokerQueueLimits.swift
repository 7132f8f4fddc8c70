import Foundation
import GantryProtocol
import Logging
import Synchronization

/// Per-queue limits: kept in Postgres, known to every broker (each keeps a copy, refreshed when any broker
/// changes them and at every safety poll), enforced by the claim.
extension Broker {
    static let queueLimitsChanged = "queue_limits"

    /// The queues among these that this broker knows to have limits (none, nearly always).
    func limited(among queues: [String]) -> Set<String> {
        queueLimits.withLock { limits in limits.isEmpty ? [] : Set(queues.filter { limits[$0] != nil }) }
    }

    func refreshQueueLimits() async throws {
        let limits = try await queues.limits()
        queueLimits.withLock { $0 = limits }
    }

    func configureQueue(_ params: QueuesConfigure.Params) async throws -> QueuesConfigure.Result {
        let limit = QueueLimit(concurrency: params.concurrency, rateLimit: params.rateLimit)
        try await applyQueueLimit(params.queue, limit, source: .rpc)
        logger.info("queue configured", metadata: [
            "queue": "\(params.queue)", "concurrency": "\(params.concurrency.map(String.init) ?? "none")",
            "rate_limit": "\(params.rateLimit.map { "\($0.limit) per \($0.periodMs) ms" } ?? "none")",
        ])
        return QueuesConfigure.Result(queue: params.queue, concurrency: params.concurrency, rateLimit: params.rateLimit)
    }

    /// Stores the limit, tells the other brokers, and wakes waiters: a raised limit may free room at once.
    func applyQueueLimit(_ queue: String, _ limit: QueueLimit, source: SettingSource) async throws {
        try await queues.configure(queue, limit, source: source)
        try await announceQueueLimitsChanged()
        let waiting = try await store.availableCounts(queues: [queue])
        if !waiting.isEmpty { await announceAvailable(waiting) }
    }

    /// Limits from the config file: applied on start; queues the file no longer names lose theirs.
    public func applyConfiguredQueueLimits(_ limits: [String: QueueLimit]) async throws {
        for (queue, limit) in limits.sorted(by: { $0.key < $1.key }) {
            try await queues.configure(queue, limit, source: .config)
        }
        try await queues.removeConfiguredLimits(except: Array(limits.keys))
        try await announceQueueLimitsChanged()
    }

    private func announceQueueLimitsChanged() async throws {
        try await refreshQueueLimits()
        let control = ControlOrder(from: id.wireString, order: Self.queueLimitsChanged, id: nil, all: true)
        try await brokers.sendControl(String(decoding: try GantryJSON.makeEncoder().encode(control), as: UTF8.self))
    }

    /// A job of a concurrency-limited queue finished: a waiting reserve may now take the slot it freed.
    func slotFreed(queue: String) async {
        guard queueLimits.withLock({ $0[queue]?.concurrency != nil }) else { return }
        let waiting = (try? await store.availableCounts(queues: [queue])) ?? [:]
        if !waiting.isEmpty { await announceAvailable(waiting) }
    }
}
