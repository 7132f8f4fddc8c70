import GantryProtocol
import Synchronization

/// Hooks into a client's enqueues and a worker's jobs and lifecycle, for error tracking, metrics and tracing:
/// the twelve of `proto-json/hooks.json`, in lowerCamelCase. Hooks of one name run in the order added; for around
/// hooks the first added is outermost, and each must call `next` once and return what it returns. An error a
/// hook throws reaches `onFatalError` (with the hook's name), never silently lost: a throwing `beforeEnqueue` or
/// `aroundEnqueue` fails the enqueue, a throwing `beforeJob` or `aroundJob` fails the job like a throwing handler,
/// and a throwing `after…` hook changes nothing of the outcome.
///
/// ```swift
/// let hooks = Hooks()
/// hooks.onJobFailure { job, error in Sentry.capture(error, tags: ["job_type": job.type]) }
/// hooks.aroundJob { job, next in try await metrics.time(job.type) { try await next(job) } }
/// let worker = try Worker(queues: ["mail"], hooks: hooks)
/// ```
public final class Hooks: Sendable {
    /// The hooks' names as proto-json/hooks.json spells them.
    public enum Name: String, CaseIterable, Sendable {
        case beforeEnqueue = "before_enqueue", aroundEnqueue = "around_enqueue", afterEnqueue = "after_enqueue"
        case beforeJob = "before_job", aroundJob = "around_job", afterJob = "after_job"
        case onJobFailure = "on_job_failure", onFatalError = "on_fatal_error"
        case beforeStartup = "before_startup", afterStartup = "after_startup"
        case beforeShutdown = "before_shutdown", afterShutdown = "after_shutdown"
    }

    /// The jobs of one enqueue (one job, or a batch's) and the step that enqueues them, answering their ids.
    public typealias EnqueueNext = @Sendable ([Enqueue.Params]) async throws -> [String]
    public typealias JobNext = @Sendable (ReservedJob) async throws -> StepOutcome

    struct Registered: Sendable {
        var beforeEnqueue: [@Sendable ([Enqueue.Params]) async throws -> [Enqueue.Params]] = []
        var aroundEnqueue: [@Sendable ([Enqueue.Params], EnqueueNext) async throws -> [String]] = []
        var afterEnqueue: [@Sendable ([Enqueue.Params], [String]) async throws -> Void] = []
        var beforeJob: [@Sendable (ReservedJob) async throws -> Void] = []
        var aroundJob: [@Sendable (ReservedJob, JobNext) async throws -> StepOutcome] = []
        var afterJob: [@Sendable (ReservedJob, Result<StepOutcome, any Error>) async throws -> Void] = []
        var onJobFailure: [@Sendable (ReservedJob, any Error) async throws -> Void] = []
        var onFatalError: [@Sendable (any Error, Name?) async -> Void] = []
        var lifecycle: [Name: [@Sendable () async throws -> Void]] = [:]
    }

    private let registered = Mutex(Registered())

    public init() {}

    /// May change the jobs (a batch's, or one) before they are sent.
    public func beforeEnqueue(_ hook: @escaping @Sendable ([Enqueue.Params]) async throws -> [Enqueue.Params]) {
        registered.withLock { $0.beforeEnqueue.append(hook) }
    }
    public func aroundEnqueue(_ hook: @escaping @Sendable ([Enqueue.Params], EnqueueNext) async throws -> [String]) {
        registered.withLock { $0.aroundEnqueue.append(hook) }
    }
    public func afterEnqueue(_ hook: @escaping @Sendable ([Enqueue.Params], [String]) async throws -> Void) {
        registered.withLock { $0.afterEnqueue.append(hook) }
    }
    public func beforeJob(_ hook: @escaping @Sendable (ReservedJob) async throws -> Void) {
        registered.withLock { $0.beforeJob.append(hook) }
    }
    public func aroundJob(_ hook: @escaping @Sendable (ReservedJob, JobNext) async throws -> StepOutcome) {
        registered.withLock { $0.aroundJob.append(hook) }
    }
    /// After the handler returned (`.success`) or threw (`.failure`), before the ack or nack.
    public func afterJob(_ hook: @escaping @Sendable (ReservedJob, Result<StepOutcome, any Error>) async throws -> Void) {
        registered.withLock { $0.afterJob.append(hook) }
    }
    public func onJobFailure(_ hook: @escaping @Sendable (ReservedJob, any Error) async throws -> Void) {
        registered.withLock { $0.onJobFailure.append(hook) }
    }
    /// Errors outside any job: a hook that threw (its name given), a worker loop that gave up.
    public func onFatalError(_ hook: @escaping @Sendable (any Error, Name?) async -> Void) {
        registered.withLock { $0.onFatalError.append(hook) }
    }
    public func beforeStartup(_ hook: @escaping @Sendable () async throws -> Void) { addLifecycle(.beforeStartup, hook) }
    public func afterStartup(_ hook: @escaping @Sendable () async throws -> Void) { addLifecycle(.afterStartup, hook) }
    public func beforeShutdown(_ hook: @escaping @Sendable () async throws -> Void) { addLifecycle(.beforeShutdown, hook) }
    public func afterShutdown(_ hook: @escaping @Sendable () async throws -> Void) { addLifecycle(.afterShutdown, hook) }

    private func addLifecycle(_ name: Name, _ hook: @escaping @Sendable () async throws -> Void) {
        registered.withLock { $0.lifecycle[name, default: []].append(hook) }
    }

    private var current: Registered { registered.withLock { $0 } }

    // MARK: running them

    func reportFatal(_ error: any Error, hook: Name?) async {
        for report in current.onFatalError { await report(error, hook) }
    }

    /// Runs `body` as the hook `name`; a throw is reported, then passed on.
    private func reporting<T>(_ name: Name, _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch {
            await reportFatal(error, hook: name)
            throw error
        }
    }

    func enqueue(_ jobs: [Enqueue.Params], send: @escaping EnqueueNext) async throws -> [String] {
        let hooks = current
        var jobs = jobs
        for hook in hooks.beforeEnqueue { jobs = try await reporting(.beforeEnqueue) { try await hook(jobs) } }
        let ids = try await aroundEnqueue(hooks.aroundEnqueue, jobs, innermost: send)
        for hook in hooks.afterEnqueue { try? await reporting(.afterEnqueue) { try await hook(jobs, ids) } }
        return ids
    }

    func job(_ job: ReservedJob, run: @escaping JobNext) async throws -> StepOutcome {
        let hooks = current
        let outcome: Result<StepOutcome, any Error>
        do {
            for hook in hooks.beforeJob { try await reporting(.beforeJob) { try await hook(job) } }
            outcome = .success(try await aroundJob(hooks.aroundJob, job, innermost: run))
        } catch {
            outcome = .failure(error)
        }
        if case .failure(let error) = outcome {
            for hook in hooks.onJobFailure { try? await reporting(.onJobFailure) { try await hook(job, error) } }
        }
        for hook in hooks.afterJob { try? await reporting(.afterJob) { try await hook(job, outcome) } }
        return try outcome.get()
    }

    /// Tells a handler's (or the broker's) own failure from one an around hook threw of its own: only the latter
    /// is reported as the hook's. (Two plain copies below: a generic version trips a runtime cast of the
    /// function types on Linux.)
    private final class InnerFailure: Sendable {
        private let failed = Mutex(false)
        var happened: Bool { failed.withLock { $0 } }
        func mark() { failed.withLock { $0 = true } }
    }

    private func aroundEnqueue(_ hooks: [@Sendable ([Enqueue.Params], EnqueueNext) async throws -> [String]], _ jobs: [Enqueue.Params],
                               innermost: @escaping EnqueueNext) async throws -> [String] {
        guard !hooks.isEmpty else { return try await innermost(jobs) }
        let inner = InnerFailure()
        var chain: EnqueueNext = { jobs in
            do { return try await innermost(jobs) } catch {
                inner.mark()
                throw error
            }
        }
        for hook in hooks.reversed() {
            let next = chain
            chain = { jobs in try await hook(jobs, next) }
        }
        do { return try await chain(jobs) } catch {
            if !inner.happened { await reportFatal(error, hook: .aroundEnqueue) }
            throw error
        }
    }

    private func aroundJob(_ hooks: [@Sendable (ReservedJob, JobNext) async throws -> StepOutcome], _ job: ReservedJob,
                           innermost: @escaping JobNext) async throws -> StepOutcome {
        guard !hooks.isEmpty else { return try await innermost(job) }
        let inner = InnerFailure()
        var chain: JobNext = { job in
            do { return try await innermost(job) } catch {
                inner.mark()
                throw error
            }
        }
        for hook in hooks.reversed() {
            let next = chain
            chain = { job in try await hook(job, next) }
        }
        do { return try await chain(job) } catch {
            if !inner.happened { await reportFatal(error, hook: .aroundJob) }
            throw error
        }
    }

    /// Lifecycle hooks: a throw is reported and does not stop the worker.
    func lifecycle(_ name: Name) async {
        for hook in current.lifecycle[name] ?? [] { try? await reporting(name) { try await hook() } }
    }
}
