/// Reads the queue limits again, so a change made through another broker (or one whose notice was lost) applies
/// here within `safetyPollInterval`.
struct QueueLimitsRefresh {
    let broker: Broker

    func round() async throws -> Duration {
        try await broker.queues.refreshLimits()
        return broker.configuration.safetyPollInterval
    }
}
