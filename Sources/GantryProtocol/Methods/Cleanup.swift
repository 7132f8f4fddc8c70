/// `cleanup`: deletes finished jobs (completed, dead, cancelled or expired) that finished more than
/// `older_than_ms` ago, oldest first, in short statements of 1,000 rows, at most `limit` per call so no call
/// holds locks or runs long. Call again while `more` is true (the CLI does, with progress).
/// `{"jsonrpc":"2.0","id":1,"method":"cleanup","params":{"states":["completed"],"older_than_ms":604800000}}`
public enum Cleanup: RPCMethod {
    public static let name = "cleanup"
    public static let maxLimit = 100_000
    public static let finishedStates: [JobState] = [.completed, .dead, .cancelled, .expired]

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var states: [JobState]
        public var olderThanMs: Int64
        public var queue: String?
        public var limit: Int

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        public init(states: [JobState] = [.completed], olderThanMs: Int64, queue: String? = nil, limit: Int = 10_000) {
            self.states = states
            self.olderThanMs = olderThanMs
            self.queue = queue
            self.limit = limit
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            states = try c.decodeIfPresent([JobState].self, forKey: .states) ?? [.completed]
            guard let age = try c.decodeInteger(Int64.self, forKey: .olderThanMs) else {
                throw DecodingError.keyNotFound(CodingKeys.olderThanMs, .init(codingPath: [], debugDescription: "required"))
            }
            olderThanMs = age
            queue = try c.decodeIfPresent(String.self, forKey: .queue)
            limit = try c.decodeInteger(Int.self, forKey: .limit) ?? 10_000
        }

        public func validate() throws(RPCErrorObject) {
            guard !states.isEmpty else { throw .invalidParams(field: "states", "must name at least one finished state") }
            for (index, state) in states.enumerated() where !Cleanup.finishedStates.contains(state) {
                throw .invalidParams(field: "states[\(index)]", "is \(state.rawValue); only finished jobs are cleaned up (completed, dead, cancelled, expired)")
            }
            guard olderThanMs >= 0 else { throw .invalidParams(field: "older_than_ms", "must be 0 or more") }
            if let queue { try Names.checkQueue(queue, field: "queue") }
            guard (1...Cleanup.maxLimit).contains(limit) else {
                throw .invalidParams(field: "limit", "must be between 1 and \(Cleanup.maxLimit), got \(limit)")
            }
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case states, queue, limit
            case olderThanMs = "older_than_ms"
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var deleted: Int
        /// Whether more jobs may match: call again.
        public var more: Bool
        /// Finished operations deleted with their step records (a call without `queue` covers them too: completed
        /// ones with `completed`, failed ones with `dead`, cancelled ones with `cancelled`).
        public var deletedOperations: Int?

        public init(deleted: Int, more: Bool, deletedOperations: Int? = nil) {
            self.deleted = deleted
            self.more = more
            self.deletedOperations = deletedOperations
        }

        enum CodingKeys: String, CodingKey {
            case deleted, more
            case deletedOperations = "deleted_operations"
        }
    }
}

extension Cleanup {
    /// The operations a cleanup of jobs in `states` covers.
    public static func operationStates(for states: [JobState]) -> [OperationState] {
        var covered: [OperationState] = []
        if states.contains(.completed) { covered.append(.completed) }
        if states.contains(.dead) || states.contains(.expired) { covered.append(.failed) }
        if states.contains(.cancelled) { covered.append(.cancelled) }
        return covered
    }
}
