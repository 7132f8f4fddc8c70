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

    public init(configuration: BrokerConfiguration, client: PostgresClient, pipelines: PostgresPipelines, migrate: Bool = true,
                logger: Logger, onBound: @escaping @Sendable (SocketAddress) -> Void = { _ in }) {
        self.broker = Broker(configuration: configuration, client: client, pipelines: pipelines, logger: logger)
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
        // Schemas first: the config file's cron schedules are checked against them too.
        try await broker.types.refreshSchemas()
        if let schedules = broker.configuration.cronSchedules { try await broker.cron.applyConfigured(schedules) }
        if let limits = broker.configuration.queueLimits { try await broker.queues.applyConfigured(limits) }
        // Packages before subscriptions: a subscription may target one.
        if let packages = broker.configuration.packages { try await broker.packages.applyConfigured(packages) }
        if let webhooks = broker.configuration.webhooks { try await broker.webhooks.applyConfigured(webhooks) }
        if let subscriptions = broker.configuration.subscriptions { try await broker.events.applyConfigured(subscriptions) }
        try await broker.queues.refreshLimits()
        // Signed in before the first lease is handed out, so no other broker mistakes those leases for orphans.
        try await BrokerHeartbeat(broker: broker).runOnce()
        // One file per chore in Maintenance/; each round returns how long to sleep before the next.
        let chores: [any Service] = [
            PeriodicChore(name: "heartbeat", logger: logger, round: BrokerHeartbeat(broker: broker).round),
            Notifier(client: client, broker: broker, logger: logger, onListening: {
                // Notices sent while nobody listened are lost: look again at once.
                _ = try? await WaiterPoll(broker: broker).runOnce()
                try? await broker.queues.refreshLimits()
            }),
            PeriodicChore(name: "lease reaper", logger: logger, round: LeaseReaper(broker: broker).round),
            PeriodicChore(name: "scheduler", logger: logger, round: Scheduler(broker: broker).round),
            PeriodicChore(name: "expirer", logger: logger, round: Expirer(broker: broker).round),
            PeriodicChore(name: "waiter poll", logger: logger, round: WaiterPoll(broker: broker).round),
            PeriodicChore(name: "queue limits refresh", logger: logger, round: QueueLimitsRefresh(broker: broker).round),
            PeriodicChore(name: "type schemas refresh", logger: logger, round: TypeSchemasRefresh(broker: broker).round),
            PeriodicChore(name: "retention cleaner", logger: logger, round: RetentionCleaner(broker: broker).round),
            PeriodicChore(name: "cron enqueuer", logger: logger, round: CronEnqueuer(broker: broker).round),
            PeriodicChore(name: "package cron", logger: logger, round: PackageCron(broker: broker).round),
            PeriodicChore(name: "backlog watch", logger: logger, round: BacklogWatch(broker: broker).round),
            PeriodicChore(name: "webhook deliverer", logger: logger, round: WebhookDeliverer(broker: broker).round),
        ]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for chore in chores { group.addTask { try await chore.run() } }
            group.addTask { try await RPCListener(broker: broker, logger: logger, onBound: onBound).run() }
            try await group.waitForAll()
        }
        await broker.jobStore.storage.pipelines.close()
        try? await broker.brokerStore.signOut(id: broker.id)
        logger.info("broker stopped")
    }
}
