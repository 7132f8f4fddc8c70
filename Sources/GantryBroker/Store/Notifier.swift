import Foundation
import GantryProtocol
import Logging
import PostgresNIO
import ServiceLifecycle

/// Holds this broker's one LISTEN connection: notifications from other brokers become wakes, operators'
/// orders for workers (sent through any broker) reach the workers connected here, and lifecycle events reach
/// the connections here that watch them.
/// The connection can die silently; it is re-opened with backoff, and each (re)connect triggers a poll for
/// what may have been missed meanwhile.
struct Notifier: Service {
    let client: PostgresClient
    let broker: Broker
    let logger: Logger
    let onListening: @Sendable () async -> Void

    func run() async throws {
        var backoff = Backoff(maximum: .seconds(5))
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: JobStore.notifyChannel) { notifications in
                        try await connection.listen(on: BrokerStore.controlChannel) { orders in
                            try await connection.listen(on: WebhookStore.watchChannel) { events in
                                backoff.reset()
                                logger.debug("listening for job notifications, operators' orders and lifecycle events")
                                await onListening()
                                try await withThrowingTaskGroup(of: Void.self) { group in
                                    group.addTask { [broker] in
                                        for try await order in orders { await broker.workers.receiveControl(order.payload) }
                                    }
                                    group.addTask { [broker] in
                                        for try await event in events { await broker.watchers.deliver(event.payload) }
                                    }
                                    for try await notification in notifications.cancelOnGracefulShutdown() {
                                        handle(notification.payload)
                                    }
                                    group.cancelAll()
                                }
                            }
                        }
                    }
                }
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { return }
                logger.warning("job notifications lost; reconnecting", metadata: ["error": "\(error)", "retry_in": "\(backoff.upcoming)"])
            }
            try? await Task.sleep(for: backoff.next())
        }
    }

    /// Payload: `<broker id> <queue> <count>`. Our own were acted on before they were sent.
    private func handle(_ payload: String) {
        // Our own inserts woke our waiters already; every enqueue sends one of these, so skip them before parsing.
        guard !payload.hasPrefix(broker.wirePrefix) else { return }
        let parts = payload.split(separator: " ")
        guard parts.count == 3, let count = Int(parts[2]) else { return }
        broker.parkedReserves.jobsAvailable([String(parts[1]): count])
    }
}
