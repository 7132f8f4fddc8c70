import Foundation
import GantryProtocol
import Logging
import ServiceLifecycle
import Synchronization

/// A job as a handler sees it: its args decoded to the handler's type.
public struct JobContext<Args: Sendable>: Sendable {
    public let id: String
    public let type: String
    public let args: Args
    public let queue: String
    public let attempt: Int
    public let maxAttempts: Int
    public let meta: JSONValue
}

/// Throw this (or an error conforming to `PermanentError`) from a handler when retrying cannot help, e.g. the
/// args are invalid: the job goes straight to the dead set.
public protocol PermanentError: Error {}

public struct PermanentFailure: PermanentError, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs registered handlers for jobs from ordered queues, with a concurrency limit: reserves with a long poll,
/// extends the leases of long jobs, acks on return and nacks on throw. It is a ServiceLifecycle `Service`:
/// on graceful shutdown (SIGTERM in a `ServiceGroup`) it stops reserving and lets running jobs finish.
/// Operators steer it from the broker: after `worker.quiet` it finishes what it holds and reserves nothing more,
/// but keeps running (so a supervisor does not restart it into taking jobs again) until stopped; `worker.stop`
/// cancels running handlers, hands their jobs back (a nack that retries at once) and returns.
///
/// ```swift
/// let worker = try Worker(url: "gantry://127.0.0.1:7440", queues: ["mail"], concurrency: 8)
/// worker.register("email.send") { (job: JobContext<Email>) in try await send(job.args) }
/// try await worker.run()
/// ```
public final class Worker: Service, Sendable {
    /// Runs one job; what it returns is stored as the job's `result`.
    public typealias Handler = @Sendable (ReservedJob) async throws -> JSONValue?
    /// Runs one step of an operation: reads the operation's globals, says what to merge into them and where to go.
    public typealias StepHandler = @Sendable (ReservedJob, StepContext) async throws -> StepOutcome
    /// What any handler's run comes to.
    typealias Run = @Sendable (ReservedJob) async throws -> StepOutcome

    public let queues: [String]
    public let concurrency: Int
    public let id: String
    /// The lease asked for at reserve; running jobs are extended every third of it.
    public let lease: Duration
    let logger: Logger
    private let handlers = Mutex<[String: Run]>([:])
    /// Running handlers by job id, so `worker.stop` can cancel them.
    private let running = Mutex<[String: Task<StepOutcome, any Error>]>([:])
    private let stopping = Atomic<Bool>(false)
    private let quieted = Atomic<Bool>(false)
    private let handingBack = Atomic<Bool>(false)
    /// Jobs an operator cancelled while they ran (`extend` said so): their handlers are cancelled.
    private let cancelledByOperator = Mutex<Set<String>>([])
    private let url: String
    private let token: String?
    private let tls: ClientTLS?
    /// Run around every job and at startup and shutdown (`Hooks`).
    public let hooks: Hooks
    /// Where `/live` and `/ready` are served (nil: nowhere; 0: any free port, see `healthPort`).
    let healthPortAsked: Int?
    /// On a graceful stop, how long running jobs may finish before they are cancelled and handed back.
    public let drainTimeout: Duration
    private let lastBeat = Mutex<ContinuousClock.Instant?>(nil)
    private let connected = Atomic<Bool>(false)
    private let health = Mutex<HealthServer?>(nil)
    /// Cancels running jobs once the drain timeout of a graceful stop has passed.
    private let draining = Mutex<Task<Void, any Error>?>(nil)

    /// `token` and `tls` as for `GantryClient`.
    public init(url: String = "gantry://127.0.0.1:7440", queues: [String], concurrency: Int = 10,
                id: String = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)",
                lease: Duration = .seconds(60), token: String? = nil, tls: ClientTLS? = nil, hooks: Hooks = Hooks(),
                healthPort: Int? = nil, drainTimeout: Duration = .seconds(30),
                logger: Logger = Logger(label: "gantry.worker")) throws {
        guard !queues.isEmpty else { throw InvalidWorkerSettings(description: "A worker needs at least one queue to reserve from.") }
        guard concurrency >= 1 else { throw InvalidWorkerSettings(description: "A worker's concurrency must be at least 1 (got \(concurrency)).") }
        guard lease >= .seconds(1) else { throw InvalidWorkerSettings(description: "A worker's lease must be at least one second.") }
        _ = try GantryClient.address(of: url)
        self.url = url
        self.token = token
        self.tls = tls
        self.queues = queues
        self.concurrency = concurrency
        self.id = id
        self.lease = lease
        self.hooks = hooks
        self.healthPortAsked = healthPort
        self.drainTimeout = drainTimeout
        self.logger = logger
    }

    /// The port `/live` and `/ready` are served on while it runs (nil when none was asked for).
    public var healthPort: Int? { health.withLock { $0?.port } }

    /// Live: its loop (or its lease heartbeat, while every slot is busy) went round within the last lease.
    /// Ready: connected to a broker, reserving, and not told to quiet or stop.
    func healthStatus() -> HealthServer.Status {
        let beat = lastBeat.withLock { $0 }
        let live = beat.map { ContinuousClock.now - $0 < max(lease, .seconds(30)) } ?? false
        let reserving = !stopping.load(ordering: .relaxed) && !quieted.load(ordering: .relaxed)
        let ready = live && connected.load(ordering: .relaxed) && reserving
        let detail = !live ? "the worker loop has not run recently" : !connected.load(ordering: .relaxed) ? "not connected to a broker"
            : !reserving ? "stopping or quiet: taking no jobs" : "connected and reserving"
        return HealthServer.Status(live: live, ready: ready, detail: detail)
    }

    private func beat() { lastBeat.withLock { $0 = .now } }

    /// Registers the handler for a job type; `args` are decoded to `Args` (a decoding failure is permanent).
    public func register<Args: Decodable & Sendable>(
        _ type: String, _ handler: @escaping @Sendable (JobContext<Args>) async throws -> Void
    ) {
        handlers.withLock {
            $0[type] = { job in
                let args: Args
                do {
                    args = try JSONValueDecoder.decode(Args.self, from: job.args)
                } catch {
                    throw PermanentFailure("args do not decode as \(Args.self): \(error)")
                }
                try await handler(JobContext(
                    id: job.id, type: job.type, args: args, queue: job.queue, attempt: job.attempt,
                    maxAttempts: job.maxAttempts, meta: job.meta))
                return StepOutcome()
            }
        }
    }

    /// Registers a handler that takes the job as reserved and may return a result to keep with it.
    public func register(_ type: String, raw handler: @escaping Handler) {
        handlers.withLock { $0[type] = { job in StepOutcome(result: try await handler(job)) } }
    }

    /// Registers a handler that takes the job as reserved and says its outcome: a result and, for a step of an
    /// operation, what to merge into its globals and where it goes next (for a job that is no step, `set` or
    /// `jumpTo` are refused by the broker and the job fails for good).
    public func register(_ type: String, outcome handler: @escaping @Sendable (ReservedJob) async throws -> StepOutcome) {
        handlers.withLock { $0[type] = handler }
    }

    /// Registers the handler of a step of operations: it gets the operation (its globals, branch and place) and
    /// returns what to merge into the globals (`set`) and where the operation goes next (`jumpTo`). A job of
    /// the type that is no step fails for good.
    public func registerStep(_ type: String, _ handler: @escaping StepHandler) {
        handlers.withLock {
            $0[type] = { job in
                guard let operation = job.operation else {
                    throw PermanentFailure("job \(job.id) of type \(job.type) is not a step of an operation, and its handler is a step handler")
                }
                return try await handler(job, operation)
            }
        }
    }

    /// Whether an operator told it to quiet (it reserves nothing until stopped).
    public var isQuiet: Bool { quieted.load(ordering: .relaxed) }

    /// Stops reserving; `run()` returns once running jobs have finished, or after `drainTimeout` has cancelled
    /// those still running and handed their jobs back.
    public func shutdown() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        let drain = drainTimeout
        let drainer = Task { [weak self] in
            try await Task.sleep(for: drain)
            guard let self, !self.running.withLock({ $0.isEmpty }) else { return }
            self.logger.warning("drain timeout: handing back the jobs still running", metadata: ["timeout": "\(drain)"])
            self.stop()
        }
        draining.withLock { $0 = drainer }
    }

    /// Stops reserving and cancels running handlers; their jobs are handed back for another worker.
    public func stop() {
        handingBack.store(true, ordering: .relaxed)
        stopping.store(true, ordering: .relaxed)
        for task in running.withLock({ Array($0.values) }) { task.cancel() }
    }

    private func obey(_ notification: String) {
        switch notification {
        case WorkerNotification.quiet.rawValue:
            logger.notice("told by the broker to quiet: finishing running jobs, reserving no more until stopped")
            quieted.store(true, ordering: .relaxed)
        case WorkerNotification.stop.rawValue:
            logger.notice("told by the broker to stop: handing back running jobs")
            stop()
        default:
            logger.debug("ignoring a notification", metadata: ["method": "\(notification)"])
        }
    }

    public func run() async throws {
        await hooks.lifecycle(.beforeStartup)
        beat()
        if let port = healthPortAsked {
            let server = try await HealthServer.start(port: port) { [weak self] in
                self?.healthStatus() ?? HealthServer.Status(live: false, ready: false, detail: "the worker is gone")
            }
            health.withLock { $0 = server }
            logger.info("health endpoints", metadata: ["live": "http://127.0.0.1:\(server.port)/live", "ready": "http://127.0.0.1:\(server.port)/ready"])
        }
        defer {
            if let server = health.withLock({ $0 }) { Task { await server.stop() } }
        }
        let announced = handlers.withLock { $0.keys.sorted() }.map { Hello.Handler(type: $0) }
        let client = try GantryClient(
            url: url, name: "gantry-swift-worker",
            worker: Hello.Worker(id: id, queues: queues, concurrency: concurrency, handlers: announced), token: token, tls: tls, logger: logger,
            onNotification: { [weak self] in self?.obey($0) })
        logger.info("worker started", metadata: ["queues": "\(queues)", "concurrency": "\(concurrency)", "handlers": "\(announced.map(\.type))"])
        let acks = AckBatcher { try await client.call(Ack.self, $0) }
        let extender = Task { await self.extendLeases(client) }
        defer { extender.cancel() }
        await hooks.lifecycle(.afterStartup)
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var free = concurrency
                // Reserve in batches: wait for a quarter of the slots to free up (or all, when idle) rather than
                // one round trip per finished job.
                let batch = max(1, concurrency / 4)
                while !stopping.load(ordering: .relaxed) && !Task.isCancelled {
                    beat()
                    if quieted.load(ordering: .relaxed) {
                        try? await Task.sleep(for: .milliseconds(250))
                        continue
                    }
                    if free < batch && free < concurrency {
                        try await group.next()
                        free += 1
                        continue
                    }
                    let jobs: [ReservedJob]
                    do {
                        // Short enough to notice shutdown promptly; the broker answers at once when a job comes.
                        jobs = try await client.call(Reserve.self, Reserve.Params(
                            queues: queues, max: free, waitMs: 2000, leaseMs: EnqueueOptions.milliseconds(lease))).jobs
                        connected.store(true, ordering: .relaxed)
                    } catch {
                        connected.store(false, ordering: .relaxed)
                        logger.warning("reserve failed; retrying", metadata: ["error": "\(error)"])
                        try await Task.sleep(for: .seconds(1))
                        continue
                    }
                    for job in jobs {
                        free -= 1
                        group.addTask { await self.perform(job, client: client, acks: acks) }
                    }
                }
                // Let running jobs finish (their leases are still extended meanwhile).
                stopping.store(true, ordering: .relaxed)
                await hooks.lifecycle(.beforeShutdown)
                try await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.shutdown()
        }
        draining.withLock { $0 }?.cancel()
        await client.close()
        logger.info("worker stopped")
        await hooks.lifecycle(.afterShutdown)
    }

    private func perform(_ job: ReservedJob, client: GantryClient, acks: AckBatcher) async {
        let started = ContinuousClock.now
        do {
            guard let handler = handlers.withLock({ $0[job.type] }) else {
                throw UnknownJobType(type: job.type)
            }
            let hooks = hooks
            let work = Task { try await TraceContext.run(job) { try await hooks.job(job, run: handler) } }
            running.withLock { $0[job.id] = work }
            defer { running.withLock { _ = $0.removeValue(forKey: job.id) } }
            if handingBack.load(ordering: .relaxed) { work.cancel() }
            let outcome = try await work.value
            if outcome.movesOperation {
                // The broker takes set and jump_to only in a step's own ack, never in a batch.
                _ = try await client.call(Ack.self, Ack.Params(id: job.id, result: outcome.result, set: outcome.set.map(JSONValue.object), jumpTo: outcome.jumpTo))
            } else {
                // Jobs that finish together are acked together.
                try await acks.ack(job.id, result: outcome.result)
            }
            logger.info("job done", metadata: ["id": "\(job.id)", "type": "\(job.type)", "took": "\(ContinuousClock.now - started)"])
        } catch let error as RPCErrorObject where error.code == GantryErrorCode.leaseLost.rawValue {
            logger.warning("lease lost; the job was put back and may run again", metadata: ["id": "\(job.id)"])
        } catch {
            await fail(job, error: error, client: client)
        }
    }

    private func fail(_ job: ReservedJob, error: any Error, client: GantryClient) async {
        if cancelledByOperator.withLock({ $0.remove(job.id) != nil }) {
            let cancelled = Nack.Failure(message: "cancelled by an operator while it ran", kind: "JobCancelled")
            _ = try? await client.call(Nack.self, Nack.Params(id: job.id, error: cancelled, retry: false))
            logger.info("job cancelled by an operator", metadata: ["id": "\(job.id)", "type": "\(job.type)"])
            return
        }
        if handingBack.load(ordering: .relaxed) {
            let handBack = Nack.Failure(message: "the worker was told to stop and handed the job back", kind: "WorkerStopped")
            _ = try? await client.call(Nack.self, Nack.Params(id: job.id, error: handBack, retry: true, retryInMs: 0))
            logger.info("job handed back", metadata: ["id": "\(job.id)", "type": "\(job.type)"])
            return
        }
        let permanent = error is any PermanentError
        let failure = Nack.Failure(
            message: "\(error)", kind: String(describing: Swift.type(of: error)),
            backtrace: .array(String(reflecting: error).split(separator: "\n").map { .string(String($0)) }))
        do {
            let result = try await client.call(Nack.self, Nack.Params(id: job.id, error: failure, retry: !permanent))
            logger.warning("job failed", metadata: [
                "id": "\(job.id)", "type": "\(job.type)", "error": "\(error)", "now": "\(result.state.rawValue)",
            ])
        } catch {
            logger.warning("could not nack; the broker puts the job back when its lease ends", metadata: ["id": "\(job.id)", "error": "\(error)"])
        }
    }

    /// Heartbeat for long jobs: every third of the lease, extend all running jobs' leases in one call.
    private func extendLeases(_ client: GantryClient) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: lease / 3)
            beat()
            let ids = running.withLock { Array($0.keys) }
            guard !ids.isEmpty else { continue }
            guard let result = try? await client.call(Extend.self, Extend.Params(ids: ids, leaseMs: EnqueueOptions.milliseconds(lease))) else {
                continue
            }
            if !result.lost.isEmpty {
                logger.warning("leases lost while running; those jobs may run again elsewhere", metadata: ["ids": "\(result.lost)"])
            }
            let cancelled = result.leases.filter { $0.cancelRequested == true }.map(\.id)
            if !cancelled.isEmpty {
                cancelledByOperator.withLock { $0.formUnion(cancelled) }
                let tasks = running.withLock { running in cancelled.compactMap { running[$0] } }
                for task in tasks { task.cancel() }
            }
        }
    }
}

/// A `Worker` was set up with settings it cannot work with; the description says which.
public struct InvalidWorkerSettings: Error, CustomStringConvertible {
    public let description: String
}

/// No handler is registered here for the job's type.
public struct UnknownJobType: Error, CustomStringConvertible {
    public let type: String
    public var description: String { "no handler for job type \(type) on this worker" }
}
