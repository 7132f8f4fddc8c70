import Foundation
import Logging

/// Jobs still waiting when their queue timeout (`expires_at`, `queue_timeout_ms`) passes become `expired` and are
/// never handed out. Runs as often as the scheduler sleeps at most, so a job expires within that of its time.
struct Expirer {
    /// Jobs expired in one round at most.
    static let batchLimit = 1000

    let broker: Broker

    /// One round as of `now` (the database's clock unless a test pins one): the jobs that expired, by queue.
    @discardableResult
    func runOnce(now: Date? = nil) async throws -> [String: Int] {
        let expired = try await broker.jobStore.expireStaleJobs(now: now, limit: Self.batchLimit)
        if !expired.isEmpty {
            broker.logger.info("expired jobs that waited past their queue timeout", metadata: ["jobs": "\(expired.values.reduce(0, +))"])
            for (queue, count) in expired { broker.metrics.expired(queue: queue, count: count) }
        }
        return expired
    }

    func round() async throws -> Duration {
        let expired = try await runOnce()
        return expired.values.reduce(0, +) >= Self.batchLimit ? .zero : broker.configuration.schedulerMaxSleep
    }
}
