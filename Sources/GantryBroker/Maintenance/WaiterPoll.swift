/// The safety net under LISTEN/NOTIFY: notifications are lost while the LISTEN connection is down, so waiting
/// reserves look at their queues now and then.
struct WaiterPoll {
    let broker: Broker

    /// One look: the queues that have jobs for their waiters, with how many (up to a cap).
    @discardableResult
    func runOnce() async throws -> [String: Int] {
        let queues = broker.parkedReserves.waitedQueues
        guard !queues.isEmpty else { return [:] }
        let available = try await broker.jobStore.availableCounts(queues: queues)
        if !available.isEmpty { broker.parkedReserves.jobsAvailable(available) }
        return available
    }

    func round() async throws -> Duration {
        try await runOnce()
        return broker.configuration.safetyPollInterval
    }
}
