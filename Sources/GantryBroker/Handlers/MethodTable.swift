import Foundation
import GantryProtocol
import Logging

/// The whole protocol, one row per method: its params and result types (through `RPCMethod`), who may call it,
/// which queues a request names, and the handler group that answers it. Adding a method is adding a row here,
/// its types in GantryProtocol and its schemas in proto-json.
enum MethodTable {
    typealias Handler = @Sendable (Broker, RPCRequest, Session) async throws -> Data

    struct Row: Sendable {
        /// The roles that may call it when the broker has tokens; `admin` may call every method, anyone `hello`.
        let roles: Set<Role>
        let handler: Handler
    }

    static let rows: [String: Row] = [
        Hello.name: route(Hello.self, roles: Set(Role.allCases)) { try await $0.workers.hello($1, session: $2) },

        Enqueue.name: route(Enqueue.self, roles: [.producer], queues: { [$0.queue] }) { broker, params, _ in try await broker.jobs.enqueue(params) },
        EnqueueBatch.name: route(EnqueueBatch.self, roles: [.producer], queues: { $0.jobs.map(\.queue) }) { broker, params, _ in
            try await broker.jobs.enqueueBatch(params)
        },
        JobsGet.name: route(JobsGet.self, roles: [.producer]) { try await $0.jobs.get($1, session: $2) },

        Reserve.name: route(Reserve.self, roles: [.worker], queues: { $0.queues }) { try await $0.leases.reserve($1, session: $2) },
        Ack.name: route(Ack.self, roles: [.worker]) { try await $0.leases.ack($1, session: $2) },
        Nack.name: route(Nack.self, roles: [.worker]) { try await $0.leases.nack($1, session: $2) },
        Extend.name: route(Extend.self, roles: [.worker]) { try await $0.leases.extend($1, session: $2) },

        JobsList.name: route(JobsList.self) { broker, params, _ in try await broker.operators.list(params) },
        JobsRetry.name: route(JobsRetry.self) { broker, params, _ in try await broker.operators.retry(params) },
        JobsCancel.name: route(JobsCancel.self) { broker, params, _ in try await broker.operators.cancel(params) },
        JobsDiscard.name: route(JobsDiscard.self) { broker, params, _ in try await broker.operators.discard(params) },
        Cleanup.name: route(Cleanup.self) { broker, params, _ in try await broker.operators.cleanup(params) },
        Stats.name: route(Stats.self, roles: [.producer, .worker, .viewer]) { broker, _, _ in try await broker.operators.stats() },

        QueuesList.name: route(QueuesList.self, roles: [.viewer]) { broker, _, _ in QueuesList.Result(queues: try await broker.queues.stats()) },
        QueuesPause.name: route(QueuesPause.self) { broker, params, _ in try await broker.queues.pause(params) },
        QueuesResume.name: route(QueuesResume.self) { broker, params, _ in try await broker.queues.resume(params) },
        QueuesConfigure.name: route(QueuesConfigure.self) { broker, params, _ in try await broker.queues.configure(params) },

        WorkersList.name: route(WorkersList.self, roles: [.viewer]) { broker, _, _ in try await broker.workers.list() },
        WorkersQuiet.name: route(WorkersQuiet.self) { broker, params, _ in try await broker.workers.steer(params, .quiet) },
        WorkersStop.name: route(WorkersStop.self) { broker, params, _ in try await broker.workers.steer(params, .stop) },

        CronList.name: route(CronList.self, roles: [.viewer]) { broker, _, _ in CronList.Result(schedules: try await broker.cronStore.list()) },
        CronUpsert.name: route(CronUpsert.self) { broker, params, _ in try await broker.cron.upsert(params) },
        CronDelete.name: route(CronDelete.self) { broker, params, _ in try await broker.cron.delete(params) },
        CronPause.name: route(CronPause.self) { broker, params, _ in try await broker.cron.pause(params) },
        CronResume.name: route(CronResume.self) { broker, params, _ in try await broker.cron.resume(params) },
        CronTrigger.name: route(CronTrigger.self) { broker, params, _ in try await broker.cron.trigger(params) },

        TypesRegister.name: route(TypesRegister.self) { broker, params, _ in try await broker.types.register(params) },
        TypesList.name: route(TypesList.self, roles: [.viewer]) { broker, _, _ in TypesList.Result(types: try await broker.typeStore.list()) },
        TypesGet.name: route(TypesGet.self, roles: [.viewer]) { broker, params, _ in try await broker.types.get(params) },
        TypesDelete.name: route(TypesDelete.self) { broker, params, _ in try await broker.types.delete(params) },

        OperationsStart.name: route(OperationsStart.self, roles: [.producer], queues: { $0.queues }) { broker, params, _ in
            try await broker.operations.start(params)
        },
        OperationsGet.name: route(OperationsGet.self, roles: [.producer]) { broker, params, _ in try await broker.operations.get(params) },
        OperationsList.name: route(OperationsList.self, roles: [.producer]) { broker, params, _ in try await broker.operations.list(params) },
        OperationsRetry.name: route(OperationsRetry.self) { broker, params, _ in try await broker.operations.retry(params) },
        OperationsCancel.name: route(OperationsCancel.self) { broker, params, _ in try await broker.operations.cancel(params) },

        EventsPublish.name: route(EventsPublish.self, roles: [.producer]) { broker, params, _ in try await broker.events.publish(params) },
        EventsGet.name: route(EventsGet.self, roles: [.producer]) { broker, params, _ in try await broker.events.get(params) },
        EventsList.name: route(EventsList.self, roles: [.producer]) { broker, params, _ in try await broker.eventStore.list(params) },
        EventsReplay.name: route(EventsReplay.self) { broker, params, _ in try await broker.events.replay(params) },
        SubscriptionsUpsert.name: route(SubscriptionsUpsert.self) { broker, params, _ in try await broker.events.upsert(params) },
        SubscriptionsList.name: route(SubscriptionsList.self, roles: [.viewer]) { broker, _, _ in
            SubscriptionsList.Result(subscriptions: try await broker.eventStore.subscriptions())
        },
        SubscriptionsDelete.name: route(SubscriptionsDelete.self) { broker, params, _ in try await broker.events.delete(params) },
        SubscriptionsPause.name: route(SubscriptionsPause.self) { broker, params, _ in try await broker.events.setPaused(params, true) },
        SubscriptionsResume.name: route(SubscriptionsResume.self) { broker, params, _ in try await broker.events.setPaused(params, false) },

        PackagesUpsert.name: route(PackagesUpsert.self) { broker, params, _ in try await broker.packages.upsert(params) },
        PackagesList.name: route(PackagesList.self, roles: [.producer]) { broker, _, _ in PackagesList.Result(packages: try await broker.packageStore.list()) },
        PackagesGet.name: route(PackagesGet.self, roles: [.producer]) { broker, params, _ in try await broker.packages.get(params) },
        PackagesDelete.name: route(PackagesDelete.self) { broker, params, _ in try await broker.packages.delete(params) },
        PackagesRun.name: route(PackagesRun.self, roles: [.producer]) { try await $0.packages.run($1, session: $2) },
        PackagesExecutions.name: route(PackagesExecutions.self, roles: [.producer]) { broker, params, _ in try await broker.packages.executions(params) },
        ExecutionsSave.name: route(ExecutionsSave.self) { broker, params, _ in try await broker.packages.save(params) },
        Watch.name: route(Watch.self, roles: [.producer, .viewer]) { try $0.watchers.watch($1, session: $2) },
        Unwatch.name: route(Unwatch.self, roles: [.producer, .viewer]) { broker, _, session in broker.watchers.unwatch(session: session) },
        WebhooksUpsert.name: route(WebhooksUpsert.self) { broker, params, _ in try await broker.webhooks.upsert(params) },
        WebhooksList.name: route(WebhooksList.self, roles: [.viewer]) { broker, _, _ in WebhooksList.Result(webhooks: try await broker.webhookStore.list()) },
        WebhooksDelete.name: route(WebhooksDelete.self) { broker, params, _ in try await broker.webhooks.delete(params) },
        WebhooksDeliveries.name: route(WebhooksDeliveries.self) { broker, params, _ in try await broker.webhooks.deliveries(params) },
        ExecutionsSaved.name: route(ExecutionsSaved.self, roles: [.producer]) { broker, params, _ in try await broker.packages.saved(params) },
    ]

    static let names = rows.keys.sorted()

    /// A row: `roles` beyond admin (none: admin only), and `queues`, the queues a request names, which a token
    /// limited to some queues must cover.
    private static func route<M: RPCMethod>(
        _ method: M.Type, roles: Set<Role> = [], queues: (@Sendable (M.Params) -> [String])? = nil,
        _ body: @escaping @Sendable (Broker, M.Params, Session) async throws -> M.Result
    ) -> Row where M.Params: KnownFields {
        Row(roles: roles.union([.admin])) { broker, request, session in
            let params = try GantryJSON.decodeParams(M.Params.self, of: request)
            if let validated = params as? any ValidatedParams { try validated.validate() }
            if let queues { try broker.checkQueues(queues(params), method: M.name, session: session) }
            let result = try await body(broker, params, session)
            return try GantryJSON.makeEncoder().encode(result)
        }
    }
}
