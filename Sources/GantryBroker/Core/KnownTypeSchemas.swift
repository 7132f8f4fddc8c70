import GantryProtocol
import Synchronization

/// This broker's copy of every job type's argument schema, compiled once, so an enqueue checks its args
/// without a query (and, for the many types without a schema, without more than a dictionary lookup); and what
/// workers announced lately, so a storm of reconnecting workers does not rewrite the same rows.
final class KnownTypeSchemas: Sendable {
    private struct State {
        var schemas: [String: JSONSchema] = [:]
        /// Bumped by every local change, so a refresh that read the table before it does not undo it.
        var generation = 0
        /// type → the schema last recorded for it from a hello, and when.
        var announced: [String: (schema: JSONValue?, at: ContinuousClock.Instant)] = [:]
    }

    private let state = Mutex(State())
    /// A worker's announcement is written again at most this often (it refreshes `announced_at`).
    static let announcementInterval: Duration = .seconds(300)

    func schema(of type: String) -> JSONSchema? {
        state.withLock { $0.schemas.isEmpty ? nil : $0.schemas[type] }
    }

    /// Refuses the first job whose args break its type's schema, naming the job (in a batch), path and rule.
    func check(_ jobs: [Enqueue.Params]) throws(RPCErrorObject) {
        let known = state.withLock { $0.schemas }
        guard !known.isEmpty else { return }
        for (index, job) in jobs.enumerated() {
            guard let schema = known[job.type] else { continue }
            let violations = schema.violations(of: job.args)
            if !violations.isEmpty {
                throw .argsDoNotMatch(type: job.type, violations, prefix: jobs.count == 1 ? "" : "jobs[\(index)].")
            }
        }
    }

    func set(_ type: String, _ schema: JSONSchema?) {
        state.withLock {
            $0.schemas[type] = schema
            $0.generation += 1
        }
    }

    var generation: Int { state.withLock { $0.generation } }

    /// Replaces every schema with what was read from the table, unless a local change came after the read began.
    func replace(with fresh: [String: JSONSchema], readAtGeneration generation: Int) {
        state.withLock { state in
            guard state.generation == generation else { return }
            state.schemas = fresh
        }
    }

    /// The handlers of a hello worth writing: new types, changed schemas, or not written for a while.
    func announcementsToRecord(_ handlers: [Hello.Handler], now: ContinuousClock.Instant = .now) -> [Hello.Handler] {
        state.withLock { state in
            handlers.filter { handler in
                guard let last = state.announced[handler.type] else { return true }
                return last.schema != handler.argsSchema || now - last.at >= Self.announcementInterval
            }
        }
    }

    func recorded(_ handlers: [Hello.Handler], now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            for handler in handlers { state.announced[handler.type] = (handler.argsSchema, now) }
        }
    }
}
