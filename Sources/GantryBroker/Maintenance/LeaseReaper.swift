import Foundation
import Logging
import NIOCore

/// Puts back jobs whose lease ran out, and jobs held through a broker that stopped heartbeating, with the reason
/// in their errors (or buries them, with no attempts left). One broker reaps at a time (an advisory lock).
struct LeaseReaper {
    /// Jobs put back in one round at most; a bigger pile takes more rounds.
    static let batchLimit = 1000

    let broker: Broker

    /// One round as of `now` (the database's clock unless a test pins one: brokers' own clocks may differ from it
    /// and from each other): the jobs made available again, by queue (none when another broker is reaping).
    @discardableResult
    func runOnce(now: Date? = nil) async throws -> [String: Int] {
        let timeoutMs = TimeAmount(broker.configuration.brokerTimeout).nanoseconds / 1_000_000
        guard let available = try await broker.jobStore.reapLostLeases(brokerTimeoutMs: timeoutMs, now: now, limit: Self.batchLimit),
              !available.isEmpty else { return [:] }
        broker.logger.info("put back jobs whose lease ran out or whose broker died", metadata: ["jobs": "\(available.values.reduce(0, +))"])
        for (queue, count) in available { broker.metrics.leasesLost(queue: queue, reason: "reaped", count: count) }
        await broker.announceAvailable(available)
        return available
    }

    /// A round, then the pause before the next.
    func round() async throws -> Duration {
        try await runOnce()
        return broker.configuration.reaperInterval
    }
}
