import Foundation
import GantryProtocol
import CoreMetrics
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The broker's behaviour behind the wire: one handler per method, the long-poll logic and the bookkeeping of
/// sessions. It knows nothing of sockets; `RPCConnection` feeds it decoded requests.
public final class Broker: Sendable {
    public let id: UUID
    public let configuration: BrokerConfiguration
    let store: JobStore
    let brokers: BrokerStore
    let queues: QueueStore
    let cron: CronStore
    let logger: Logger
    let waitBoard = WaitBoard()
    let retryPolicy: RetryPolicy
    let authenticator: Authenticator
    public let metrics: BrokerMetrics
    private let startedAt = ContinuousClock.now
    private let counts = Mutex(Counts())
    /// Open sessions, so operators can list and steer the workers among them.
    let sessions = Mutex<[UUID: Session]>([:])
    /// Single enqueues and acks from all connections, each kind sharing statements and commits.
    let enqueues: Coalescer<Enqueue.Params, Enqueue.Result>
    let acks: Coalescer<JobStore.Completion, JobStore.Completed>
    let claims: ClaimCoalescers
    /// Every queue's limits, as last read from Postgres.
    let queueLimits = Mutex<[String: QueueLimit]>([:])

    struct Counts {
        var connections = 0
        var workers = 0
        var draining = false
    }

    public init(id: UUID = UUID(), configuration: BrokerConfiguration, client: PostgresClient, logger: Logger,
                retryPolicy: RetryPolicy = RetryPolicy(), metrics: BrokerMetrics = BrokerMetrics()) {
        self.id = id
        self.configuration = configuration
        self.metrics = metrics
        let storage = Storage(client: client, connectionTimeout: configuration.storageTimeout, metrics: metrics)
        let store = JobStore(storage: storage, brokerID: id, logger: logger)
        self.store = store
        self.enqueues = Coalescer { try await store.insertJobs($0) }
        self.acks = Coalescer { try await store.completeJobs($0) }
        self.claims = ClaimCoalescers(store: store, defaultLeaseMs: configuration.defaultLeaseMs)
        self.brokers = BrokerStore(storage: storage, logger: logger)
        self.queues = QueueStore(storage: storage, logger: logger)
        self.cron = CronStore(storage: storage, jobs: store, logger: logger)
        self.logger = logger
        self.retryPolicy = retryPolicy
        self.authenticator = Authenticator(tokens: configuration.tokens)
    }

    // MARK: sessions

    public func sessionOpened(_ session: Session) {
        counts.withLock { $0.connections += 1 }
        sessions.withLock { $0[session.id] = session }
        metrics.connections.increment()
    }

    /// Puts back whatever the session still holds: its connection is gone, so its jobs must run elsewhere.
    public func sessionClosed(_ session: Session) async {
        let wasWorker = session.closeAndReportWhetherWorker()
        sessions.withLock { _ = $0.removeValue(forKey: session.id) }
        counts.withLock {
            $0.connections -= 1
            if wasWorker { $0.workers -= 1 }
        }
        metrics.connections.decrement()
        if wasWorker { metrics.workers.decrement() }
        guard session.hasReserved else { return }
        // Retried while PostgreSQL is away (a worker that drops during an outage must not leave its jobs
        // stuck until their leases end); after a minute the reaper's lease expiry remains the fallback.
        var backoff = Backoff(initial: .seconds(2), maximum: .seconds(2))
        for attempt in 1...30 {
            do {
                let released = try await store.releaseSessionJobs(
                    sessionID: session.id, workerID: session.workerID,
                    message: "The worker's connection closed before it acked or nacked the job.")
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

    public var isDraining: Bool { counts.withLock { $0.draining } }

    /// SIGTERM: hand out nothing more; waiting reserves return empty at once.
    public func beginDrain() {
        counts.withLock { $0.draining = true }
        waitBoard.wakeAll()
    }

    /// Wakes local waiters at once and tells other brokers through Postgres.
    func announceAvailable(_ available: [String: Int]) async {
        waitBoard.jobsAvailable(available)
        do { try await store.notifyAvailable(available) } catch {
            logger.debug("notify failed; other brokers will find the jobs by polling", metadata: ["error": "\(error)"])
        }
    }

    // MARK: the method table

    typealias Handler = @Sendable (Broker, RPCRequest, Session) async throws -> Data

    /// Everything about one method: its params and result types (through `RPCMethod`), who may call it, which
    /// queues a request names, and what it does.
    struct MethodEntry: Sendable {
        /// The roles that may call it when the broker has tokens; `admin` may call every method, anyone `hello`.
        let roles: Set<Role>
        let handler: Handler
    }

    /// The whole protocol: method name → its row. Adding a method is adding a row here and its types in
    /// GantryProtocol (and its schemas in proto-json).
    static let methods: [String: MethodEntry] = [
        Hello.name: route(Hello.self, roles: Set(Role.allCases)) { try await $0.hello($1, session: $2) },
        Enqueue.name: route(Enqueue.self, roles: [.producer], queues: { [$0.queue] }) { broker, params, _ in try await broker.enqueue(params) },
        EnqueueBatch.name: route(EnqueueBatch.self, roles: [.producer], queues: { $0.jobs.map(\.queue) }) { broker, params, _ in
            try await broker.enqueueBatch(params)
        },
        Reserve.name: route(Reserve.self, roles: [.worker], queues: { $0.queues }) { try await $0.reserve($1, session: $2) },
        Ack.name: route(Ack.self, roles: [.worker]) { try await $0.ack($1, session: $2) },
        Nack.name: route(Nack.self, roles: [.worker]) { try await $0.nack($1, session: $2) },
        Extend.name: route(Extend.self, roles: [.worker]) { try await $0.extend($1, session: $2) },
        JobsGet.name: route(JobsGet.self, roles: [.producer]) { try await $0.getJob($1, session: $2) },
        JobsRetry.name: route(JobsRetry.self) { broker, params, _ in try await broker.retryJob(params) },
        JobsList.name: route(JobsList.self) { broker, params, _ in try await broker.listJobs(params) },
        JobsCancel.name: route(JobsCancel.self) { broker, params, _ in try await broker.cancelJob(params) },
        JobsDiscard.name: route(JobsDiscard.self) { broker, params, _ in try await broker.discardJob(params) },
        Stats.name: route(Stats.self, roles: [.producer, .worker]) { broker, _, _ in try await broker.stats() },
        Cleanup.name: route(Cleanup.self) { broker, params, _ in try await broker.cleanup(params) },
        WorkersList.name: route(WorkersList.self) { broker, _, _ in try await broker.listWorkers() },
        WorkersQuiet.name: route(WorkersQuiet.self) { broker, params, _ in try await broker.steerWorkers(params, .quiet) },
        WorkersStop.name: route(WorkersStop.self) { broker, params, _ in try await broker.steerWorkers(params, .stop) },
        QueuesPause.name: route(QueuesPause.self) { broker, params, _ in try await broker.pauseQueue(params) },
        QueuesResume.name: route(QueuesResume.self) { broker, params, _ in try await broker.resumeQueue(params) },
        QueuesList.name: route(QueuesList.self) { broker, _, _ in QueuesList.Result(queues: try await broker.queueStats()) },
        QueuesConfigure.name: route(QueuesConfigure.self) { broker, params, _ in try await broker.configureQueue(params) },
        CronList.name: route(CronList.self) { broker, _, _ in CronList.Result(schedules: try await broker.cron.list()) },
        CronUpsert.name: route(CronUpsert.self) { broker, params, _ in try await broker.upsertSchedule(params) },
        CronDelete.name: route(CronDelete.self) { broker, params, _ in try await broker.deleteSchedule(params) },
        CronPause.name: route(CronPause.self) { broker, params, _ in try await broker.pauseSchedule(params) },
        CronResume.name: route(CronResume.self) { broker, params, _ in try await broker.resumeSchedule(params) },
        CronTrigger.name: route(CronTrigger.self) { broker, params, _ in try await broker.triggerSchedule(params) },
    ]

    static let methodNames = methods.keys.sorted()

    /// A row: `roles` beyond admin (none: admin only), and `queues`, the queues a request names, which a token
    /// limited to some queues must cover.
    private static func route<M: RPCMethod>(
        _ method: M.Type, roles: Set<Role> = [], queues: (@Sendable (M.Params) -> [String])? = nil,
        _ body: @escaping @Sendable (Broker, M.Params, Session) async throws -> M.Result
    ) -> MethodEntry where M.Params: KnownFields {
        MethodEntry(roles: roles.union([.admin])) { broker, request, session in
            let params = try GantryJSON.decodeParams(M.Params.self, of: request)
            if let validated = params as? any ValidatedParams { try validated.validate() }
            if let queues { try broker.checkQueues(queues(params), method: M.name, session: session) }
            let result = try await body(broker, params, session)
            return try GantryJSON.makeEncoder().encode(result)
        }
    }

    /// Answers one request: the result's JSON, or the error to send.
    public func handle(_ request: RPCRequest, session: Session) async -> Result<Data, RPCErrorObject> {
        if let refusal = admit(request, session: session) {
            metrics.request(Self.methods[request.method] == nil ? "unknown" : request.method, failed: true)
            return .failure(refusal)
        }
        guard let handler = Self.methods[request.method]?.handler else {
            metrics.request("unknown", failed: true)
            return .failure(.methodNotFound(request.method, known: Self.methodNames))
        }
        metrics.requestsInFlight.increment()
        defer { metrics.requestsInFlight.decrement() }
        session.sawRequest()
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
        if let unavailable = error as? StorageUnavailable {
            logger.warning("storage unavailable", metadata: ["method": "\(method)", "error": "\(unavailable)"])
            return .storageUnavailable(unavailable.description)
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

    // MARK: handlers

    func hello(_ params: Hello.Params, session: Session) async throws -> Hello.Result {
        try authenticate(params, session: session)
        let (wasWorker, isWorker) = session.greeted(params)
        if wasWorker != isWorker {
            counts.withLock { $0.workers += isWorker ? 1 : -1 }
            if isWorker { metrics.workers.increment() } else { metrics.workers.decrement() }
        }
        logger.info("hello", metadata: [
            "session": "\(session.id)", "peer": "\(session.peer)", "client": "\(params.client ?? "-")",
            "worker": "\(params.worker?.id ?? "-")", "token": "\(session.access?.name ?? "-")",
        ])
        return Hello.Result(broker: "gantryd \(configuration.version)", protocol: ProtocolDefaults.protocolVersion, sessionID: session.id.wireString)
    }

    func enqueue(_ params: Enqueue.Params) async throws -> Enqueue.Result {
        try await insert([params])[0]
    }

    func enqueueBatch(_ params: EnqueueBatch.Params) async throws -> EnqueueBatch.Result {
        try checkBatch(params)
        let results = try await insert(params.jobs)
        let duplicates = results.indices.filter { results[$0].duplicate == true }
        return EnqueueBatch.Result(ids: results.map(\.id), duplicates: duplicates.isEmpty ? nil : duplicates)
    }

    private func insert(_ jobs: [Enqueue.Params]) async throws -> [Enqueue.Result] {
        try checkArgs(jobs)
        let results = jobs.count == 1 ? [try await enqueues.submit(jobs[0])] : try await store.insertJobs(jobs)
        // The store already notified every broker in the enqueue's transaction; wake our own waiters without
        // waiting for the notification's round trip.
        var available: [String: Int] = [:]
        for (job, result) in zip(jobs, results) where result.duplicate != true {
            if result.state == .available { available[job.queue, default: 0] += 1 }
            metrics.count(.enqueued, queue: job.queue, type: job.type)
        }
        if !available.isEmpty { waitBoard.jobsAvailable(available) }
        return results
    }

    func reserve(_ params: Reserve.Params, session: Session) async throws -> Reserve.Result {
        try checkWait(params)
        var queues: [String] = []
        for queue in params.queues where !queues.contains(queue) { queues.append(queue) }
        let started = ContinuousClock.now
        let deadline = started + .milliseconds(params.waitMs)
        defer { metrics.reserveWaitTime.recordNanoseconds((ContinuousClock.now - started).nanoseconds) }
        session.willReserve()
        while true {
            if isDraining || session.isClosing { return Reserve.Result(jobs: []) }
            if session.isQuiet {
                // Told to take nothing new: wait out the poll rather than answer at once, so a worker that does
                // not understand the notification does not spin.
                await wait(for: waitBoard.register(queues: []), session: session, until: deadline)
                return Reserve.Result(jobs: [])
            }
            let ticket = waitBoard.register(queues: queues)
            let claim: JobStore.Claim
            do {
                let limited = limited(among: queues)
                if !limited.isEmpty {
                    claim = try await store.claimJobs(
                        queues: queues, max: params.max, sessionID: session.id, leaseMs: params.leaseMs,
                        defaultLeaseMs: configuration.defaultLeaseMs, limited: limited)
                } else {
                    let request = JobStore.ClaimRequest(sessionID: session.id, max: params.max, leaseMs: params.leaseMs)
                    claim = JobStore.Claim(jobs: try await claims.claim(queues: queues, request))
                }
            } catch {
                waitBoard.remove(ticket)
                throw error
            }
            if !claim.jobs.isEmpty || ContinuousClock.now >= deadline {
                waitBoard.remove(ticket)
                session.reserved(claim.jobs)
                return Reserve.Result(jobs: claim.jobs)
            }
            // A full rate window frees up at a known time; nobody announces it.
            await wait(for: ticket, session: session, until: min(deadline, claim.rateLimitedUntil ?? deadline))
            if Task.isCancelled { return Reserve.Result(jobs: []) }
        }
    }

    /// Parks a reserve until jobs are announced, the deadline passes, or the session closes.
    private func wait(for ticket: Waitlist.Ticket, session: Session, until deadline: ContinuousClock.Instant) async {
        if session.waiting(ticket) {
            await waitBoard.wait(ticket, until: deadline)
            session.doneWaiting(ticket)
        }
        waitBoard.remove(ticket)
    }

    func ack(_ params: Ack.Params, session: Session) async throws -> Ack.Result {
        if let ids = params.ids { return try await ackMany(ids, results: params.results ?? [:], session: session) }
        guard let wireID = params.id else { throw RPCErrorObject.invalidParams(field: "id", "is required") }
        guard let id = Int64(wireID) else { throw RPCErrorObject.notFound(jobID: wireID) }
        let outcome = try await acks.submit(JobStore.Completion(id: id, sessionID: session.id, result: params.result))
        guard outcome.held else { throw try await leaseProblem(id: id, wireID: wireID) }
        if let queue = acked(wireID, session: session) { await slotFreed(queue: queue) }
        return Ack.Result(cancelRequested: outcome.cancelRequested ? true : nil)
    }

    /// `ack` with `ids`: one statement and one commit for them all; an id whose lease is lost is answered in
    /// `lost` with its job's state, and the others are acked all the same.
    private func ackMany(_ wireIDs: [String], results: [String: JSONValue], session: Session) async throws -> Ack.Result {
        let numbered = wireIDs.compactMap { wireID in Int64(wireID).map { (wireID, $0) } }
        let outcomes = numbered.isEmpty ? [] : try await store.completeJobs(numbered.map { wireID, id in
            JobStore.Completion(id: id, sessionID: session.id, result: results[wireID])
        })
        var acked: [String] = []
        var cancelRequested: [String] = []
        var freedQueues: Set<String> = []
        for ((wireID, _), outcome) in zip(numbered, outcomes) where outcome.held {
            acked.append(wireID)
            if outcome.cancelRequested { cancelRequested.append(wireID) }
            if let queue = self.acked(wireID, session: session) { freedQueues.insert(queue) }
        }
        for queue in freedQueues { await slotFreed(queue: queue) }
        let ackedSet = Set(acked)
        let lostIDs = wireIDs.filter { !ackedSet.contains($0) }
        let states = lostIDs.isEmpty ? [:] : try await store.jobStates(ids: lostIDs.compactMap { Int64($0) })
        let lost = lostIDs.map { Ack.Lost(id: $0, state: Int64($0).flatMap { states[$0] }) }
        return Ack.Result(acked: acked, lost: lost, cancelRequestedIDs: cancelRequested)
    }

    /// The session's bookkeeping and the metrics of an acked job; returns its queue.
    private func acked(_ wireID: String, session: Session) -> String? {
        guard let lease = session.finished(wireID) else { return nil }
        metrics.count(.completed, queue: lease.queue, type: lease.type)
        metrics.jobRan(queue: lease.queue, type: lease.type, for: ContinuousClock.now - lease.reservedAt)
        return lease.queue
    }

    func nack(_ params: Nack.Params, session: Session) async throws -> Nack.Result {
        guard let id = Int64(params.id) else { throw RPCErrorObject.notFound(jobID: params.id) }
        guard let lease = session.lease(for: params.id) else { throw try await leaseProblem(id: id, wireID: params.id) }
        let decision = retryPolicy.decide(
            attempt: lease.attempt, maxAttempts: lease.maxAttempts, retryRequested: params.retry, retryInMs: params.retryInMs)
        var error: JSONObject = [
            "message": .string(params.error.message),
            "reason": "nack",
            "at": .string(GantryJSON.formatTimestamp(Date())),
            "session_id": .string(session.id.wireString),
        ]
        error["kind"] = params.error.kind.map(JSONValue.string)
        error["backtrace"] = params.error.backtrace
        error["worker"] = session.workerID.map(JSONValue.string)
        let outcome: JobStore.FailureOutcome = switch decision {
        case .retry(let afterMs): .retry(afterMs: afterMs)
        case .dead: .dead
        }
        guard let recorded = try await store.failJob(id: id, sessionID: session.id, error: .object(error), outcome: outcome) else {
            throw try await leaseProblem(id: id, wireID: params.id)
        }
        session.finished(params.id)
        await slotFreed(queue: lease.queue)
        metrics.count(.failed, queue: lease.queue, type: lease.type)
        metrics.jobRan(queue: lease.queue, type: lease.type, for: ContinuousClock.now - lease.reservedAt)
        switch recorded {
        case .finished(let state):
            if state == .dead { metrics.count(.dead, queue: lease.queue, type: lease.type) }
            return Nack.Result(state: state)
        case .retry(let queue, let nextRunAt):
            metrics.count(.retried, queue: lease.queue, type: lease.type)
            let now = decision == .retry(afterMs: 0)
            if now { await announceAvailable([queue: 1]) }
            return Nack.Result(state: now ? .available : .scheduled, nextRunAt: nextRunAt)
        }
    }

    func extend(_ params: Extend.Params, session: Session) async throws -> Extend.Result {
        let ids = params.ids.compactMap { Int64($0) }
        let leases = try await store.extendLeases(
            ids: ids, sessionID: session.id, leaseMs: params.leaseMs, defaultLeaseMs: configuration.defaultLeaseMs)
        let extended = Set(leases.map(\.id))
        return Extend.Result(leases: leases, lost: params.ids.filter { !extended.contains($0) })
    }

    func getJob(_ params: JobsGet.Params, session: Session) async throws -> Job {
        guard let id = Int64(params.id), let job = try await store.job(id: id) else { throw RPCErrorObject.notFound(jobID: params.id) }
        try checkVisible(job, session: session)
        return job
    }

    func listJobs(_ params: JobsList.Params) async throws -> JobsList.Result {
        let filter = JobStore.JobFilter(
            queue: params.queue, state: params.state, type: params.type, tag: params.tag, beforeID: params.cursor.flatMap { Int64($0) })
        let jobs = try await store.listJobs(filter, limit: params.limit)
        return JobsList.Result(jobs: jobs, nextCursor: jobs.count == params.limit ? jobs.last?.id : nil)
    }

    func cancelJob(_ params: JobsCancel.Params) async throws -> JobsCancel.Result {
        guard let id = Int64(params.id) else { throw RPCErrorObject.notFound(jobID: params.id) }
        guard let state = try await store.cancelJob(id: id) else {
            throw try await stateProblem(id: id, wireID: params.id, action: "cancelled", allowed: "scheduled, available, reserved")
        }
        logger.info(state == .reserved ? "cancellation of a running job asked by an operator" : "job cancelled by an operator",
                    metadata: ["id": "\(id)"])
        return JobsCancel.Result(id: params.id, state: state)
    }

    func discardJob(_ params: JobsDiscard.Params) async throws -> JobsDiscard.Result {
        guard let id = Int64(params.id) else { throw RPCErrorObject.notFound(jobID: params.id) }
        guard try await store.discardJob(id: id) else {
            throw try await stateProblem(id: id, wireID: params.id, action: "discarded", allowed: "waiting or finished")
        }
        logger.info("job discarded by an operator", metadata: ["id": "\(id)"])
        return JobsDiscard.Result(id: params.id)
    }

    /// Why an operator's action did not apply: no such job, or it is in a state the action does not take.
    private func stateProblem(id: Int64, wireID: String, action: String, allowed: String) async throws -> RPCErrorObject {
        guard let state = try await store.jobState(id: id) else { return .notFound(jobID: wireID) }
        return .wrongState(jobID: wireID, state: state.rawValue, action: action, allowed: allowed)
    }

    func retryJob(_ params: JobsRetry.Params) async throws -> JobsRetry.Result {
        guard let id = Int64(params.id) else { throw RPCErrorObject.notFound(jobID: params.id) }
        guard let queue = try await store.retryJob(id: id) else {
            if let holder = try await store.uniqueKeyHolder(forFinishedJob: id) {
                throw RPCErrorObject.uniqueKeyTaken(jobID: params.id, holderID: String(holder))
            }
            throw try await stateProblem(
                id: id, wireID: params.id, action: "retried", allowed: JobStore.retryableStates.map(\.rawValue).joined(separator: ", "))
        }
        logger.info("job retried by an operator", metadata: ["id": "\(id)", "queue": "\(queue)"])
        await announceAvailable([queue: 1])
        return JobsRetry.Result(id: params.id, state: .available)
    }

    /// Deletes in statements of 1,000 rows until `limit` is reached or nothing more matches.
    func cleanup(_ params: Cleanup.Params) async throws -> Cleanup.Result {
        var deleted = 0
        var more = true
        while more && deleted < params.limit {
            let batch = min(1000, params.limit - deleted)
            let removed = try await store.pruneFinishedJobs(
                states: params.states, olderThanMs: params.olderThanMs, queue: params.queue, batch: batch, exclusive: false)
            deleted += removed
            more = removed == batch
        }
        logger.info("finished jobs cleaned up by an operator", metadata: [
            "deleted": "\(deleted)", "states": "\(params.states.map(\.rawValue))", "older_than_ms": "\(params.olderThanMs)",
        ])
        return Cleanup.Result(deleted: deleted, more: more)
    }

    func pauseQueue(_ params: QueuesPause.Params) async throws -> QueuesPause.Result {
        try await queues.pause(params.queue)
        logger.info("queue paused", metadata: ["queue": "\(params.queue)"])
        return QueuesPause.Result(queue: params.queue, paused: true)
    }

    func resumeQueue(_ params: QueuesResume.Params) async throws -> QueuesResume.Result {
        try await queues.resume(params.queue)
        logger.info("queue resumed", metadata: ["queue": "\(params.queue)"])
        let waiting = try await store.availableCounts(queues: [params.queue])
        if !waiting.isEmpty { await announceAvailable(waiting) }
        return QueuesResume.Result(queue: params.queue, paused: false)
    }

    /// Every queue with jobs or paused, with its counts and whether it is paused.
    func queueStats() async throws -> [String: Stats.QueueStats] {
        var stats = try await store.queueStats()
        for (queue, since) in try await queues.paused() {
            var entry = stats[queue] ?? .empty
            entry.paused = true
            entry.pausedAt = since
            stats[queue] = entry
        }
        for (queue, limit) in try await queues.limits() {
            var entry = stats[queue] ?? .empty
            entry.concurrency = limit.concurrency
            entry.rateLimit = limit.rateLimit
            stats[queue] = entry
        }
        return stats
    }

    func stats() async throws -> Stats.Result {
        let queues = try await queueStats()
        let (connections, workers) = counts.withLock { ($0.connections, $0.workers) }
        let uptime = ContinuousClock.now - startedAt
        return Stats.Result(queues: queues, broker: Stats.BrokerStats(
            id: id.wireString, version: configuration.version,
            uptimeMs: TimeAmount(uptime).nanoseconds / 1_000_000,
            connections: connections, workers: workers))
    }

    /// Why an ack/nack found no lease: the job does not exist, or someone else (or nobody) holds it now.
    private func leaseProblem(id: Int64, wireID: String) async throws -> RPCErrorObject {
        guard let state = try await store.jobState(id: id) else { return .notFound(jobID: wireID) }
        return .leaseLost(jobID: wireID, state: state.rawValue)
    }
}

extension UUID {
    /// Lower case, as PostgreSQL prints uuids, so ids read the same wherever a client meets them.
    var wireString: String { uuidString.lowercased() }
}
