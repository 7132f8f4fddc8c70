import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// The broker as one service: migrate (unless told not to), then serve clients and run the background chores
/// together until graceful shutdown. It runs beside the `PostgresClient` in a `ServiceGroup`, after it in the
/// list so that it stops first and Postgres last.
public struct BrokerService: Service {
    public let broker: Broker
    let client: PostgresClient
    let migrate: Bool
    let logger: Logger
    let onBound: @Sendable (SocketAddress) -> Void

    public init(configuration: BrokerConfiguration, client: PostgresClient, migrate: Bool = true, logger: Logger,
                onBound: @escaping @Sendable (SocketAddress) -> Void = { _ in }) {
        self.broker = Broker(configuration: configuration, client: client, logger: logger)
        self.client = client
        self.migrate = migrate
        self.logger = logger
        self.onBound = onBound
    }

    public func run() async throws {
        if migrate {
            try await Migrator(client: client, logger: logger).migrate()
        }
        let broker = self.broker
        if let schedules = broker.configuration.cronSchedules { try await broker.applyConfiguredSchedules(schedules) }
        if let limits = broker.configuration.queueLimits { try await broker.applyConfiguredQueueLimits(limits) }
        try await broker.refreshQueueLimits()
        // Signed in before the first lease is handed out, so no other broker mistakes those leases for orphans.
        _ = try await broker.heartbeat()
        let chores: [any Service] = [
            PeriodicChore(name: "heartbeat", logger: logger) { try await broker.heartbeat() },
            Notifier(client: client, broker: broker, logger: logger, onListening: { _ = try? await broker.pollForWaiters() }),
            PeriodicChore(name: "lease reaper", logger: logger) { try await broker.reapLostLeases() },
            PeriodicChore(name: "scheduler", logger: logger) { try await broker.promoteDueJobs() },
            PeriodicChore(name: "waiter poll", logger: logger) { try await broker.pollForWaiters() },
            PeriodicChore(name: "cleaner", logger: logger) { try await broker.pruneFinishedJobs() },
            PeriodicChore(name: "cron", logger: logger) { try await broker.fireDueCronSchedules() },
        ]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for chore in chores { group.addTask { try await chore.run() } }
            group.addTask { try await RPCListener(broker: broker, logger: logger, onBound: onBound).run() }
            try await group.waitForAll()
        }
        try? await broker.brokers.signOut(id: broker.id)
        logger.info("broker stopped")
    }
}
