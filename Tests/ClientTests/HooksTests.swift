import Foundation
import GantryClient
import GantryProtocol
import GantryTesting
import Instrumentation
import Synchronization
import Testing
import Tracing

@Suite(.deadline(.seconds(120))) struct HooksTests {
    /// The hooks are the twelve of proto-json/hooks.json: adding one there fails this until the client follows.
    @Test func theHooksAreTheOnesTheProtocolFolderLists() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("proto-json/hooks.json")
        let listed = try JSONReader.read(Data(contentsOf: file))["hooks"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(listed == Hooks.Name.allCases.map(\.rawValue))
    }

    @Test func everyHookFiresInOrderAndAThrowingHookReachesOnFatalError() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let address = "\(broker.host):\(broker.port)"
        let seen = Notes()
        let note = seen.note

        let clientHooks = Hooks()
        clientHooks.beforeEnqueue { jobs in
            note("before_enqueue \(jobs.map(\.type))")
            return jobs.map { var job = $0; job.meta = ["tenant": "acme"]; return job }
        }
        clientHooks.aroundEnqueue { jobs, next in
            note("around_enqueue in")
            let ids = try await next(jobs)
            note("around_enqueue out")
            return ids
        }
        clientHooks.afterEnqueue { _, ids in note("after_enqueue \(ids.count)") }
        let gantry = try GantryClient(url: address, hooks: clientHooks)
        let good = try await gantry.enqueue("hooked.ok", args: [1], options: .init(queue: "hooks"))
        #expect(seen.all == ["before_enqueue [\"hooked.ok\"]", "around_enqueue in", "around_enqueue out", "after_enqueue 1"])
        #expect(try await gantry.job(id: good).meta == ["tenant": "acme"], "before_enqueue changed what was sent")
        let bad = try await gantry.enqueue("hooked.fails", args: [2], options: .init(queue: "hooks", maxAttempts: 1))

        let hooks = Hooks()
        let failures = Notes()
        let fatal = Notes()
        hooks.beforeStartup { note("before_startup") }
        hooks.afterStartup { note("after_startup") }
        hooks.beforeJob { job in note("before_job \(job.type)") }
        hooks.aroundJob { job, next in
            note("around_job outer \(job.type)")
            return try await next(job)
        }
        hooks.aroundJob { job, next in
            note("around_job inner \(job.type)")
            return try await next(job)
        }
        hooks.afterJob { job, outcome in
            if case .failure = outcome { note("after_job \(job.type) failed") } else { note("after_job \(job.type) ok") }
            if job.type == "hooked.ok" { throw Boom() }
        }
        hooks.onJobFailure { job, error in failures.note("\(job.type): \(error)") }
        hooks.onFatalError { error, hook in fatal.note("\(hook?.rawValue ?? "-"): \(error)") }
        hooks.beforeShutdown { note("before_shutdown") }
        hooks.afterShutdown { note("after_shutdown") }
        seen.clear()
        let worker = try Worker(url: address, queues: ["hooks"], concurrency: 1, hooks: hooks)
        worker.register("hooked.ok") { (_: JobContext<[Int]>) in note("handler hooked.ok") }
        worker.register("hooked.fails") { (_: JobContext<[Int]>) in throw PermanentFailure("the card was declined") }
        let running = Task { try await worker.run() }
        #expect(try await eventually {
            let done = try await gantry.job(id: good).state == .completed
            let dead = try await gantry.job(id: bad).state == .dead
            return done && dead
        })
        worker.shutdown()
        try await running.value

        let order = seen.all
        #expect(order.first == "before_startup" && order.dropFirst().first == "after_startup", "\(order)")
        #expect(order.suffix(2) == ["before_shutdown", "after_shutdown"], "\(order)")
        let okRun = order.filter { $0.contains("hooked.ok") }
        #expect(okRun == ["before_job hooked.ok", "around_job outer hooked.ok", "around_job inner hooked.ok", "handler hooked.ok", "after_job hooked.ok ok"],
                "the first added around hook is outermost: \(okRun)")
        #expect(order.contains("after_job hooked.fails failed"))
        #expect(failures.all == ["hooked.fails: the card was declined"], "on_job_failure gets the job and its error")
        #expect(fatal.all == ["after_job: the SMTP server said no"], "a throwing hook reaches on_fatal_error, named")
        #expect(try await gantry.job(id: good).state == .completed, "a throwing after_job hook does not change the outcome")
    }

    /// With a tracer bootstrapped, an enqueue inside a span carries `traceparent`; the worker's span for the job
    /// is its child on the first attempt and a new trace linked to it on the retry.
    @Test func aJobsSpanContinuesTheEnqueuersTrace() async throws {
        let tracer = RecordingTracer.shared
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let address = "\(broker.host):\(broker.port)"
        let gantry = try GantryClient(url: address)
        let traceID = String(repeating: "ab", count: 16)
        let (id, parent) = try await withSpan("checkout", context: RecordingTracer.root(traceID: traceID)) { span in
            (try await gantry.enqueue("traced.job", args: [1], options: .init(queue: "traced")), span.context[RecordingTracer.Key.self])
        }
        let meta = try await gantry.job(id: id).meta
        #expect(meta["traceparent"]?.stringValue == "00-\(traceID)-\(parent?.spanID ?? "")-01", "\(meta)")

        let attempts = Atomic<Int>(0)
        let worker = try Worker(url: address, queues: ["traced"], concurrency: 1)
        worker.register("traced.job") { (_: JobContext<[Int]>) in
            if attempts.add(1, ordering: .relaxed).newValue == 1 { throw PermanentFailure("first attempt fails") }
        }
        let running = Task { try await worker.run() }
        // The broker's own retry waits its backoff (tens of seconds); an operator's retry is at once.
        #expect(try await eventually { try await gantry.job(id: id).state == .dead })
        _ = try await gantry.call(method: "jobs.retry", params: ["id": .string(id)])
        #expect(try await eventually { try await gantry.job(id: id).state == .completed })
        worker.shutdown()
        try await running.value
        let spans = tracer.finished.withLock { $0 }.filter { $0.name == "traced.job" }
        #expect(spans.count == 2, "\(spans)")
        #expect(spans.first?.ids.traceID == traceID && spans.first?.parentSpanID == parent?.spanID, "attempt 1 is a child of the enqueue")
        #expect(spans.last?.ids.traceID != traceID && spans.last?.links.map(\.traceID) == [traceID], "attempt 2 a new trace, linked")
    }
}

/// What hooks saw, from any task.
final class Notes: Sendable {
    private let items = Mutex<[String]>([])
    var all: [String] { items.withLock { $0 } }
    @Sendable func note(_ what: String) { items.withLock { $0.append(what) } }
    func clear() { items.withLock { $0 = [] } }
}

/// A tracer that remembers finished spans and speaks W3C traceparent, bootstrapped once for this test process.
final class RecordingTracer: LegacyTracer, Sendable {
    struct IDs: Sendable, Equatable {
        var traceID: String
        var spanID: String
    }

    enum Key: ServiceContextKey {
        typealias Value = IDs
    }

    struct Finished: Sendable {
        var name: String
        var ids: IDs
        var parentSpanID: String?
        var links: [IDs]
    }

    static let shared: RecordingTracer = {
        let tracer = RecordingTracer()
        InstrumentationSystem.bootstrap(tracer)
        return tracer
    }()

    let finished = Mutex<[Finished]>([])

    static func newID(bytes: Int) -> String { (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined() }

    static func root(traceID: String) -> ServiceContext {
        var context = ServiceContext.topLevel
        context[Key.self] = IDs(traceID: traceID, spanID: newID(bytes: 8))
        return context
    }

    func startAnySpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind, at instant: @autoclosure () -> Instant,
        function: String, file fileID: String, line: UInt
    ) -> any Tracing.Span {
        let parent = context()
        var own = parent
        let ids = IDs(traceID: parent[Key.self]?.traceID ?? Self.newID(bytes: 16), spanID: Self.newID(bytes: 8))
        own[Key.self] = ids
        return RecordingSpan(name: operationName, context: own, parentSpanID: parent[Key.self]?.spanID, tracer: self)
    }

    func forceFlush() {}

    func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject) where Inject.Carrier == Carrier {
        guard let ids = context[Key.self] else { return }
        injector.inject("00-\(ids.traceID)-\(ids.spanID)-01", forKey: "traceparent", into: &carrier)
    }

    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract) where Extract.Carrier == Carrier {
        let parts = extractor.extract(key: "traceparent", from: carrier)?.split(separator: "-") ?? []
        guard parts.count == 4 else { return }
        context[Key.self] = IDs(traceID: String(parts[1]), spanID: String(parts[2]))
    }

    final class RecordingSpan: Tracing.Span, Sendable {
        let context: ServiceContext
        let parentSpanID: String?
        let tracer: RecordingTracer
        private let state: Mutex<(name: String, links: [IDs], attributes: SpanAttributes)>

        init(name: String, context: ServiceContext, parentSpanID: String?, tracer: RecordingTracer) {
            self.context = context
            self.parentSpanID = parentSpanID
            self.tracer = tracer
            state = Mutex((name, [], [:]))
        }

        var isRecording: Bool { true }
        var operationName: String {
            get { state.withLock { $0.name } }
            set { state.withLock { $0.name = newValue } }
        }
        var attributes: SpanAttributes {
            get { state.withLock { $0.attributes } }
            set { state.withLock { $0.attributes = newValue } }
        }

        func setStatus(_ status: SpanStatus) {}
        func addEvent(_ event: SpanEvent) {}
        func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {}
        func addLink(_ link: SpanLink) {
            if let ids = link.context[Key.self] { state.withLock { $0.links.append(ids) } }
        }
        func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
            let (name, links, _) = state.withLock { $0 }
            guard let ids = context[Key.self] else { return }
            tracer.finished.withLock { $0.append(Finished(name: name, ids: ids, parentSpanID: parentSpanID, links: links)) }
        }
    }
}
