import Foundation

/// Makes delayed jobs and retries available when their time comes, and sleeps until the next one is due (at most
/// `schedulerMaxSleep`, so a job scheduled by another broker or by SQL waits no longer than that).
struct Scheduler {
    /// Jobs made available in one round at most; a bigger pile takes more rounds, at once.
    static let batchLimit = 5000

    let broker: Broker

    struct Round: Equatable {
        /// Jobs made available, by queue.
        var promoted: [String: Int]
        /// How long until the next scheduled job is due, if one is.
        var nextDueIn: Duration?
    }

    /// One round as of `now` (the database's clock unless a test pins one).
    @discardableResult
    func runOnce(now: Date? = nil) async throws -> Round {
        let (available, nextDueInMs) = try await broker.jobStore.promoteDueJobs(now: now, limit: Self.batchLimit)
        if !available.isEmpty { await broker.announceAvailable(available) }
        return Round(promoted: available, nextDueIn: nextDueInMs.map { .milliseconds(max(1, $0)) })
    }

    func round() async throws -> Duration {
        let done = try await runOnce()
        if done.promoted.values.reduce(0, +) >= Self.batchLimit { return .zero }
        return min(done.nextDueIn ?? broker.configuration.schedulerMaxSleep, broker.configuration.schedulerMaxSleep)
    }
}
