import GantryProtocol
import Instrumentation
import Tracing

/// W3C Trace Context through a job's `meta` (`traceparent`, `tracestate`), with whatever tracer the process
/// bootstrapped (`InstrumentationSystem`); with none (the default no-op one) nothing is added and nothing fails.
enum TraceContext {
    static let keys = ["traceparent", "tracestate"]

    /// The job with the current trace in its meta, unless the caller put one there.
    static func stamped(_ params: Enqueue.Params) -> Enqueue.Params {
        guard params.meta == .null || params.meta.objectValue != nil else { return params }
        var meta = params.meta.objectValue ?? [:]
        guard meta["traceparent"] == nil, let context = ServiceContext.current else { return params }
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: MetaInjector())
        guard let parent = carrier["traceparent"] else { return params }
        meta["traceparent"] = .string(parent)
        if let state = carrier["tracestate"], !state.isEmpty { meta["tracestate"] = .string(state) }
        var stamped = params
        stamped.meta = .object(meta)
        return stamped
    }

    /// Runs a job inside its span: a child of the enqueue's trace on the first attempt, a new trace linked to it
    /// on a retry (a retry is not part of the request that enqueued it, which may be long over).
    static func run(_ job: ReservedJob, _ body: @Sendable () async throws -> StepOutcome) async throws -> StepOutcome {
        var carrier: [String: String] = [:]
        for key in keys { if let value = job.meta[key]?.stringValue { carrier[key] = value } }
        var enqueued = ServiceContext.topLevel
        if !carrier.isEmpty { InstrumentationSystem.instrument.extract(carrier, into: &enqueued, using: MetaExtractor()) }
        let parent = carrier.isEmpty || job.attempt > 1 ? ServiceContext.topLevel : enqueued
        return try await withSpan(job.type, context: parent, ofKind: .consumer) { span in
            span.attributes["gantry.job.id"] = job.id
            span.attributes["gantry.job.queue"] = job.queue
            span.attributes["gantry.job.attempt"] = job.attempt
            if !carrier.isEmpty && job.attempt > 1 { span.addLink(SpanLink(context: enqueued, attributes: [:])) }
            return try await body()
        }
    }

    struct MetaInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
    }

    struct MetaExtractor: Extractor {
        func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
    }
}
