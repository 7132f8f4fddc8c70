import Foundation
import GantryProtocol
import CoreMetrics
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The broker behind the wire: what every handler shares (the stores, the parked reserves, the open sessions,
/// metrics) and the bookkeeping of sessions. It answers a request by its row in `MethodTable`, whose handlers
/// live in one group per concern (`Handlers/`). It knows nothing of sockets; `RPCConnection` feeds it decoded
/// requests.
public final class Broker: Sendable {
    public let id: UUID
    /// `id` as it starts the payload of this broker's job notifications, followed by a space.
    let wirePrefix: String
    public let configuration: BrokerConfiguration
    let jobStore: JobStore
    let brokerStore: BrokerStore
    let queueStore: QueueStore
    let cronStore: CronStore
    let typeStore: TypeStore
    let dashboardStore: DashboardStore
    let operationStore: OperationStore
    let eventStore: EventStore
    let packageStore: PackageStore
    let webhookStore: WebhookStore
    let logger: Logger
    let parkedReserves = ParkedReserves()
    let retryPolicy: RetryPolicy
    let authenticator: Authenticator
    public let metrics: BrokerMetrics
    let startedAt = ContinuousClock.now
    let counts = Mutex(Counts())
    /// Open sessions, so operators can list and steer the workers among them.
    let sessions = Mutex<[UUID: Session]>([:])
    /// The sessions that `watch` lifecycle events: each event every broker hears goes only through these.
    let watchingSessions = Mutex<[UUID: Session]>([:])
    /// Single enqueues and acks from all connections, each kind sharing statements and commits.
    let enqueues: Coalescer<Enqueue.Params, Enqueue.Result>
    let acks: Coalescer<JobStore.Completion, JobStore.Completed>
    let claims: ClaimCoalescers
    /// Every queue's limits, as last read from Postgres.
    let knownQueueLimits = KnownQueueLimits()
    /// Every job type's args schema, as last read from Postgres.
    let knownTypeSchemas = KnownTypeSchemas()

    struct Counts {
        var connections = 0
        var workers = 0
        var draining = false
    }

    public init(id: UUID = UUID(), configuration: BrokerConfiguration, client: PostgresClient, pipelines: PostgresPipelines,
                logger: Logger, retryPolicy: RetryPolicy = RetryPolicy(), metrics: BrokerMetrics = BrokerMetrics()) {
        self.id = id
        self.wirePrefix = id.wireString + " "
        self.configuration = configuration
        self.metrics = metrics
        let storage = Storage(client: client, pipelines: pipelines, connectionTimeout: configuration.storageTimeout, metrics: metrics)
        let store = JobStore(storage: storage, brokerID: id, logger: logger)
        self.jobStore = store
        self.enqueues = Coalescer { try await store.insertJobs($0) }
        self.acks = Coalescer { try await store.completeJobs($0) }
        self.claims = ClaimCoalescers(store: store, defaultLeaseMs: configuration.defaultLeaseMs)
        self.brokerStore = BrokerStore(storage: storage, logger: logger)
        self.queueStore = QueueStore(storage: storage, logger: logger)
        self.cronStore = CronStore(storage: storage, jobs: store, logger: logger)
        self.typeStore = TypeStore(storage: storage, logger: logger)
        self.dashboardStore = DashboardStore(storage: storage, logger: logger)
        self.operationStore = OperationStore(storage: storage, logger: logger)
        self.eventStore = EventStore(storage: storage, logger: logger)
        self.packageStore = PackageStore(storage: storage, logger: logger)
        self.webhookStore = WebhookStore(storage: storage, logger: logger)
        self.logger = logger
        self.retryPolicy = retryPolicy
        self.authenticator = Authenticator(tokens: configuration.tokens)
    }

    // MARK: the handler groups

    var jobs: JobHandlers { JobHandlers(broker: self) }
    var leases: LeaseHandlers { LeaseHandlers(broker: self) }
    var operators: OperatorHandlers { OperatorHandlers(broker: self) }
    var queues: QueueHandlers { QueueHandlers(broker: self) }
    var workers: WorkerHandlers { WorkerHandlers(broker: self) }
    var cron: CronHandlers { CronHandlers(broker: self) }
    var types: TypeHandlers { TypeHandlers(broker: self) }
    var operations: OperationHandlers { OperationHandlers(broker: self) }
    var events: EventHandlers { EventHandlers(broker: self) }
    var packages: PackageHandlers { PackageHandlers(broker: self) }
    var watchers: WatchHandlers { WatchHandlers(broker: self) }
    var webhooks: WebhookHandlers { WebhookHandlers(broker: self) }

    // MARK: sessions

    public func sessionOpened(_ session: Session) {
        counts.withLock { $0.connections += 1 }
        sessions.withLock { $0[session.id] = session }
        metrics.connections.increment()
    }

    /// Puts back whatever the session still holds: its connection is gone, so its jobs must run elsewhere.
    public func sessionClosed(_ session: Session) async {
        let closed = session.update { $0.closed() }
        let wasWorker = closed.wasWorker
        sessions.withLock { _ = $0.removeValue(forKey: session.id) }
        watchingSessions.withLock { _ = $0.removeValue(forKey: session.id) }
        counts.withLock {
            $0.connections -= 1
            if wasWorker { $0.workers -= 1 }
        }
        metrics.connections.decrement()
        if wasWorker { metrics.workers.decrement() }
        guard closed.putBackJobs else { return }
        // Retried while PostgreSQL is away (a worker that drops during an outage must not leave its jobs
        // stuck until their leases end); after a minute the reaper's lease expiry remains the fallback.
        var backoff = Backoff(initial: .seconds(2), maximum: .seconds(2))
        for attempt in 1...30 {
            do {
                let released = try await jobStore.releaseSessionJobs(sessionID: session.id, workerID: session.workerID) { [id] released in
                    Self.workerLost(session, brokerID: id, released: released)
                }
                if !released.isEmpty {
                    logger.info("put back jobs of a closed connection", metadata: ["session": "\(session.id)", "jobs": "\(released.values.reduce(0, +))"])
                    for (queue, count) in released { metrics.leasesLost(queue: queue, reason: "connection_closed", count: count) }
                    await announceAvailable(released)
                }
                return
            } catch {
                logger.warning("could not put back a closed session's jobs yet", metadata: [
                    "session": "\(session.id)", "attempt": "\(attempt)", "error": "\(error)",
                ])
                if Task.isCancelled || isDraining { return }
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    /// What `worker.lost` says of a connection that went away holding jobs (now back in their queues).
    static func workerLost(_ session: Session, brokerID: UUID, released: [String: Int]) -> JSONValue {
        var worker: JSONObject = [
            "session_id": .string(session.id.wireString), "broker_id": .string(brokerID.wireString), "peer": .string(session.peer),
            "jobs_put_back": .int(Int64(released.values.reduce(0, +))), "queues": .array(released.keys.sorted().map(JSONValue.string)),
        ]
        worker["id"] = session.workerID.map(JSONValue.string)
        return ["worker": .object(worker)]
    }

    public var isDraining: Bool { counts.withLock { $0.draining } }

    /// SIGTERM: hand out nothing more; waiting reserves return empty at once.
    public func beginDrain() {
        counts.withLock { $0.draining = true }
        parkedReserves.wakeAll()
    }

    /// Wakes local waiters at once and tells other brokers through Postgres.
    func announceAvailable(_ available: [String: Int]) async {
        parkedReserves.jobsAvailable(available)
        do { try await jobStore.notifyAvailable(available) } catch {
            logger.debug("notify failed; other brokers will find the jobs by polling", metadata: ["error": "\(error)"])
        }
    }

    // MARK: answering requests

    /// Answers one request: the result's JSON, or the error to send.
    public func handle(_ request: RPCRequest, session: Session) async -> Result<Data, RPCErrorObject> {
        if let refusal = admit(request, session: session) {
            metrics.request(MethodTable.rows[request.method] == nil ? "unknown" : request.method, failed: true)
            return .failure(refusal)
        }
        guard let handler = MethodTable.rows[request.method]?.handler else {
            metrics.request("unknown", failed: true)
            return .failure(.methodNotFound(request.method, known: MethodTable.names))
        }
        metrics.requestsInFlight.increment()
        defer { metrics.requestsInFlight.decrement() }
        session.update { $0.sawRequest() }
        let outcome: Result<Data, RPCErrorObject>
        do {
            outcome = .success(try await handler(self, request, session))
        } catch let error as RPCErrorObject {
            outcome = .failure(error)
        } catch {
            outcome = .failure(Self.describe(error, logger: logger, method: request.method))
        }
        metrics.request(request.method, failed: (try? outcome.get()) == nil)
        return outcome
    }

    /// Storage errors that a retry can fix are told apart from bugs.
    static func describe(_ failure: any Error, logger: Logger, method: String) -> RPCErrorObject {
        let error = failure.unwrappingTransaction
        // A refusal decided inside a transaction (which it rolled back) is still the client's answer.
        if let refusal = error as? RPCErrorObject { return refusal }
        if let unavailable = error as? StorageUnavailable {
            logger.warning("storage unavailable", metadata: ["method": "\(method)", "error": "\(unavailable)"])
            return .storageUnavailable(unavailable.description)
        }
        if let pipeline = error as? PipelineError {
            switch pipeline {
            case .unavailable(let reason):
                logger.warning("storage unavailable", metadata: ["method": "\(method)", "error": "\(reason)"])
                return .storageUnavailable(reason)
            case .closed:
                return .shuttingDown
            case _ where pipeline.meansPostgresIsAway:
                logger.warning("storage unavailable", metadata: ["method": "\(method)", "error": "\(pipeline)"])
                return .storageUnavailable(pipeline.description, certain: false)
            default:
                logger.error("query failed", metadata: ["method": "\(method)", "error": "\(pipeline)"])
                return .internalError("a query failed: \(pipeline)")
            }
        }
        if let psql = error as? PSQLError {
            if psql.meansPostgresIsAway {
                logger.warning("storage unavailable", metadata: ["method": "\(method)", "error": "\(String(reflecting: psql))"])
                return .storageUnavailable(psql.serverInfo?[.message] ?? "\(psql.code)", certain: false)
            }
            logger.error("query failed", metadata: ["method": "\(method)", "error": "\(String(reflecting: psql))"])
            return .internalError("a query failed: \(psql.serverInfo?[.message] ?? "\(psql.code)")")
        }
        if error is CancellationError { return .shuttingDown }
        logger.error("request failed", metadata: ["method": "\(method)", "error": "\(error)"])
        return .internalError("\(error)")
    }
}

extension UUID {
    /// Lower case, as PostgreSQL prints uuids, so ids read the same wherever a client meets them.
    var wireString: String { uuidString.lowercased() }
}
