import Foundation
import Logging
import GantryProtocol
import NIOCore

/// Keeps the history bounded: finished jobs past their retention (completed: `completedRetention`; dead,
/// cancelled and expired: `failedRetention`), per-minute activity, expired unique-key holds and old queue starts
/// (and finished operations with the same retentions: failed and cancelled ones as dead jobs; events and finished
/// webhook deliveries as dead jobs) are deleted in short statements, so no round holds a long-running delete.
struct RetentionCleaner {
    /// Finished jobs deleted per statement, and statements per kind per round.
    static let batchSize = 1000
    static let maxBatchesPerRound = 20

    let broker: Broker

    /// One round as of `now` (the database's clock unless a test pins one): how many finished jobs were deleted.
    @discardableResult
    func runOnce(now: Date? = nil) async throws -> Int {
        let configuration = broker.configuration
        var deleted = 0
        for (states, retention) in [([JobState.completed], configuration.completedRetention),
                                    ([.dead, .cancelled, .expired], configuration.failedRetention)] {
            let olderThanMs = TimeAmount(retention).nanoseconds / 1_000_000
            for _ in 0..<Self.maxBatchesPerRound {
                let batch = try await broker.jobStore.pruneFinishedJobs(states: states, olderThanMs: olderThanMs, batch: Self.batchSize, now: now)
                deleted += batch
                if batch < Self.batchSize { break }
            }
        }
        if deleted > 0 { broker.logger.info("deleted finished jobs past their retention", metadata: ["jobs": "\(deleted)"]) }
        var operations = 0
        for (states, retention) in [([OperationState.completed], configuration.completedRetention),
                                    ([.failed, .cancelled], configuration.failedRetention)] {
            let olderThanMs = TimeAmount(retention).nanoseconds / 1_000_000
            operations += try await broker.operationStore.pruneFinished(states: states, olderThanMs: olderThanMs, batch: Self.batchSize, now: now)
        }
        if operations > 0 { broker.logger.info("deleted finished operations past their retention", metadata: ["operations": "\(operations)"]) }
        // Events are kept as long as failed jobs: long enough to see what an event started, and to replay it.
        let events = try await broker.eventStore.prune(
            olderThanMs: TimeAmount(configuration.failedRetention).nanoseconds / 1_000_000, batch: Self.batchSize, now: now)
        if events > 0 { broker.logger.info("deleted events past their retention", metadata: ["events": "\(events)"]) }
        // Webhook deliveries, once delivered or given up on, as long as failed jobs too.
        let deliveries = try await broker.webhookStore.prune(
            olderThanMs: TimeAmount(configuration.failedRetention).nanoseconds / 1_000_000, batch: Self.batchSize, now: now)
        if deliveries > 0 { broker.logger.info("deleted webhook deliveries past their retention", metadata: ["deliveries": "\(deliveries)"]) }
        try await broker.jobStore.pruneActivity(now: now)
        return deleted
    }

    func round() async throws -> Duration {
        try await runOnce()
        return broker.configuration.cleanerInterval
    }
}
