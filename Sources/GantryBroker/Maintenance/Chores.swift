import Foundation
import GantryProtocol
import Logging
import NIOCore

/// The broker's background duties, each one round of work returning when to run again.
extension Broker {
    /// Leases that ran out, and leases held through a broker that died, go back (or die, with no attempts
    /// left), with the reason recorded.
    func reapLostLeases() async throws -> Duration {
        let timeoutMs = TimeAmount(configuration.brokerTimeout).nanoseconds / 1_000_000
        if let available = try await store.reapLostLeases(brokerTimeoutMs: timeoutMs), !available.isEmpty {
            logger.info("put back jobs whose lease ran out or whose broker died", metadata: ["jobs": "\(available.values.reduce(0, +))"])
            for (queue, count) in available { metrics.leasesLost(queue: queue, reason: "reaped", count: count) }
            await announceAvailable(available)
        }
        return configuration.reaperInterval
    }

    /// Tells the other brokers this one is alive, so they leave its sessions' leases alone.
    func heartbeat() async throws -> Duration {
        // Bounded, so a broker with a huge fleet does not write megabytes every beat; the rest show up locally.
        let workers = Array(localWorkers().prefix(2000))
        let published = String(decoding: try GantryJSON.makeEncoder().encode(workers), as: UTF8.self)
        try await brokers.heartbeat(id: id, host: ProcessInfo.processInfo.hostName, version: configuration.version, workers: published)
        return configuration.heartbeatInterval
    }

    /// Delayed jobs and retries become available when their time comes, and jobs whose queue timeout passed
    /// expire; sleeps until the next scheduled job is due.
    func promoteDueJobs() async throws -> Duration {
        let expired = try await store.expireStaleJobs()
        if !expired.isEmpty {
            logger.info("expired jobs that waited past their queue timeout", metadata: ["jobs": "\(expired.values.reduce(0, +))"])
            for (queue, count) in expired { metrics.expired(queue: queue, count: count) }
        }
        let (available, nextDueInMs) = try await store.promoteDueJobs()
        if !available.isEmpty { await announceAvailable(available) }
        guard let nextDueInMs else { return configuration.schedulerMaxSleep }
        return min(.milliseconds(max(1, nextDueInMs)), configuration.schedulerMaxSleep)
    }

    /// Notifications can be lost (the LISTEN connection dropped): waiting reserves re-check now and then, and
    /// the copy of the queue limits is read again.
    func pollForWaiters() async throws -> Duration {
        try await refreshQueueLimits()
        let queues = waitBoard.waitedQueues
        if !queues.isEmpty {
            let available = try await store.availableCounts(queues: queues)
            if !available.isEmpty { waitBoard.jobsAvailable(available) }
        }
        return configuration.safetyPollInterval
    }

    /// Finished jobs past their retention are deleted in batches of 1,000, at most 20 batches per kind per
    /// round, so the history stays bounded under any load without a long-running delete.
    func pruneFinishedJobs() async throws -> Duration {
        var deleted = 0
        for (states, retention) in [([JobState.completed], configuration.completedRetention),
                                    ([.dead, .cancelled, .expired], configuration.failedRetention)] {
            let olderThanMs = TimeAmount(retention).nanoseconds / 1_000_000
            for _ in 0..<20 {
                let batch = try await store.pruneFinishedJobs(states: states, olderThanMs: olderThanMs)
                deleted += batch
                if batch < 1000 { break }
            }
        }
        if deleted > 0 { logger.info("deleted finished jobs past their retention", metadata: ["jobs": "\(deleted)"]) }
        try await store.pruneActivity()
        return configuration.cleanerInterval
    }
}
