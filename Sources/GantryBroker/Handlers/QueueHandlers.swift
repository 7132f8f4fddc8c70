import Foundation
import GantryProtocol
import Logging

/// Queues as operators steer them: pause, resume, list, and per-queue limits. Limits are kept in Postgres,
/// known to every broker (each keeps a copy, refreshed when any broker changes them and at every safety poll),
/// and enforced by the claim.
struct QueueHandlers {
    let broker: Broker

    /// The control-channel order that tells other brokers to read the limits again.
    static let limitsChanged = "queue_limits"

    func pause(_ params: QueuesPause.Params) async throws -> QueuesPause.Result {
        try await broker.queueStore.pause(params.queue)
        broker.logger.info("queue paused", metadata: ["queue": "\(params.queue)"])
        return QueuesPause.Result(queue: params.queue, paused: true)
    }

    func resume(_ params: QueuesResume.Params) async throws -> QueuesResume.Result {
        try await broker.queueStore.resume(params.queue)
        broker.logger.info("queue resumed", metadata: ["queue": "\(params.queue)"])
        let waiting = try await broker.jobStore.availableCounts(queues: [params.queue])
        if !waiting.isEmpty { await broker.announceAvailable(waiting) }
        return QueuesResume.Result(queue: params.queue, paused: false)
    }

    /// Every queue with jobs, paused or limited, with its counts, whether it is paused, and its limits.
    func stats() async throws -> [String: Stats.QueueStats] {
        var stats = try await broker.jobStore.queueStats()
        for (queue, since) in try await broker.queueStore.paused() {
            var entry = stats[queue] ?? .empty
            entry.paused = true
            entry.pausedAt = since
            stats[queue] = entry
        }
        for (queue, limit) in try await broker.queueStore.limits() {
            var entry = stats[queue] ?? .empty
            entry.concurrency = limit.concurrency
            entry.rateLimit = limit.rateLimit
            stats[queue] = entry
        }
        return stats
    }

    func configure(_ params: QueuesConfigure.Params) async throws -> QueuesConfigure.Result {
        let limit = QueueLimit(concurrency: params.concurrency, rateLimit: params.rateLimit)
        try await apply(limit, to: params.queue, source: .rpc)
        try await broker.queueStore.setBacklogAlert(params.queue, ms: params.backlogAlertMs)
        broker.logger.info("queue configured", metadata: [
            "backlog_alert_ms": "\(params.backlogAlertMs.map(String.init) ?? "none")",
            "queue": "\(params.queue)", "concurrency": "\(params.concurrency.map(String.init) ?? "none")",
            "rate_limit": "\(params.rateLimit.map { "\($0.limit) per \($0.periodMs) ms" } ?? "none")",
        ])
        return QueuesConfigure.Result(queue: params.queue, concurrency: params.concurrency, rateLimit: params.rateLimit,
                                      backlogAlertMs: params.backlogAlertMs)
    }

    /// Stores the limit, tells the other brokers, and wakes waiters: a raised limit may free room at once.
    private func apply(_ limit: QueueLimit, to queue: String, source: SettingSource) async throws {
        try await broker.queueStore.configure(queue, limit, source: source)
        try await announceLimitsChanged()
        let waiting = try await broker.jobStore.availableCounts(queues: [queue])
        if !waiting.isEmpty { await broker.announceAvailable(waiting) }
    }

    /// Limits from the config file: applied on start; queues the file no longer names lose theirs.
    func applyConfigured(_ limits: [String: QueueLimit]) async throws {
        for (queue, limit) in limits.sorted(by: { $0.key < $1.key }) {
            try await broker.queueStore.configure(queue, limit, source: .config)
        }
        try await broker.queueStore.removeConfiguredLimits(except: Array(limits.keys))
        try await announceLimitsChanged()
    }

    /// Reads every queue's limits again (another broker changed them, or the safety poll).
    func refreshLimits() async throws {
        broker.knownQueueLimits.replace(with: try await broker.queueStore.limits())
    }

    private func announceLimitsChanged() async throws {
        try await refreshLimits()
        let control = ControlOrder(from: broker.id.wireString, order: Self.limitsChanged, id: nil, all: true)
        try await broker.brokerStore.sendControl(String(decoding: try GantryJSON.makeEncoder().encode(control), as: UTF8.self))
    }

    /// A job of a concurrency-limited queue finished: a waiting reserve may now take the slot it freed.
    func slotFreed(queue: String) async {
        guard broker.knownQueueLimits.hasConcurrencyLimit(queue) else { return }
        let waiting = (try? await broker.jobStore.availableCounts(queues: [queue])) ?? [:]
        if !waiting.isEmpty { await broker.announceAvailable(waiting) }
    }
}
