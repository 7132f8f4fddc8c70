import Foundation
import GantryProtocol

/// Tells the other brokers this one is alive (so they leave its sessions' leases alone) and which workers it
/// serves, for `workers.list` on any broker.
struct BrokerHeartbeat {
    /// Workers published per beat at most, so a broker with a huge fleet does not write megabytes every beat; the
    /// rest show up on this broker's own `workers.list`.
    static let maxWorkersPublished = 2000

    let broker: Broker

    /// One beat: how many workers it published.
    @discardableResult
    func runOnce() async throws -> Int {
        let workers = Array(broker.workers.local().prefix(Self.maxWorkersPublished))
        let published = String(decoding: try GantryJSON.makeEncoder().encode(workers), as: UTF8.self)
        try await broker.brokerStore.heartbeat(
            id: broker.id, host: ProcessInfo.processInfo.hostName, version: broker.configuration.version, workers: published)
        return workers.count
    }

    func round() async throws -> Duration {
        try await runOnce()
        return broker.configuration.heartbeatInterval
    }
}
