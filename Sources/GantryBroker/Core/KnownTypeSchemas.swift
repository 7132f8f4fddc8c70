import GantryProtocol
import Synchronization

/// This broker's copy of every job type's argument schema, compiled once, so an enqueue checks its args
/// without a query (and, for the many types without a schema, without more than a dictionary lookup).
final class KnownTypeSchemas: Sendable {
    private let schemas = Mutex<[String: JSONSchema]>([:])

    func schema(of type: String) -> JSONSchema? {
        schemas.withLock { $0.isEmpty ? nil : $0[type] }
    }

    /// Refuses the first job whose args break its type's schema, naming the job (in a batch), path and rule.
    func check(_ jobs: [Enqueue.Params]) throws(RPCErrorObject) {
        let known = schemas.withLock { $0 }
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
        schemas.withLock { $0[type] = schema }
    }

    func replace(with fresh: [String: JSONSchema]) {
        schemas.withLock { $0 = fresh }
    }
}
