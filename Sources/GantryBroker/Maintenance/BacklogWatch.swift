import Foundation
import Logging

/// Raises `queue.backlog` for queues whose oldest available job waited past their `backlog_alert_ms`, once per
/// episode across brokers (see `QueueStore.checkBacklogs`).
struct BacklogWatch {
    static let interval: Duration = .seconds(5)

    let broker: Broker

    @discardableResult
    func runOnce() async throws -> [String] {
        let alerted = try await broker.queueStore.checkBacklogs()
        if !alerted.isEmpty { broker.logger.warning("queue backlog past its alert threshold", metadata: ["queues": "\(alerted)"]) }
        return alerted
    }

    func round() async throws -> Duration {
        try await runOnce()
        return Self.interval
    }
}
