import Foundation

/// `enqueue`: stores one job; answers only after the commit.
/// `{"jsonrpc":"2.0","id":2,"method":"enqueue","params":{"type":"email.send","args":["a@b.c"],"queue":"mail"}}`
public enum Enqueue: RPCMethod {
    public static let name = "enqueue"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var type: String
        public var args: JSONValue
        public var queue: String
        public var priority: Int
        public var runAt: Date?
        public var delayMs: Int64?
        public var maxAttempts: Int
        public var timeoutMs: Int64?
        public var expiresAt: Date?
        public var queueTimeoutMs: Int64?
        public var uniqueKey: String?
        /// Keeps `unique_key` taken for this long after the job completes, so a duplicate in that window gets
        /// the completed job back instead of a new run.
        public var uniqueForMs: Int64?
        public var tags: [String]
        public var meta: JSONValue

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        public init(type: String, args: JSONValue = .emptyArray, queue: String = ProtocolDefaults.queue,
                    priority: Int = ProtocolDefaults.priority, runAt: Date? = nil, delayMs: Int64? = nil,
                    maxAttempts: Int = ProtocolDefaults.maxAttempts, timeoutMs: Int64? = nil, expiresAt: Date? = nil,
                    queueTimeoutMs: Int64? = nil, uniqueKey: String? = nil, uniqueForMs: Int64? = nil, tags: [String] = [],
                    meta: JSONValue = [:]) {
            self.type = type
            self.args = args
            self.queue = queue
            self.priority = priority
            self.runAt = runAt
            self.delayMs = delayMs
            self.maxAttempts = maxAttempts
            self.timeoutMs = timeoutMs
            self.expiresAt = expiresAt
            self.queueTimeoutMs = queueTimeoutMs
            self.uniqueKey = uniqueKey
            self.uniqueForMs = uniqueForMs
            self.tags = tags
            self.meta = meta
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case type, args, queue, priority, tags, meta
            case runAt = "run_at"
            case delayMs = "delay_ms"
            case maxAttempts = "max_attempts"
            case timeoutMs = "timeout_ms"
            case expiresAt = "expires_at"
            case queueTimeoutMs = "queue_timeout_ms"
            case uniqueKey = "unique_key"
            case uniqueForMs = "unique_for_ms"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            args = try c.decodeIfPresent(JSONValue.self, forKey: .args) ?? .emptyArray
            queue = try c.decodeIfPresent(String.self, forKey: .queue) ?? ProtocolDefaults.queue
            priority = try c.decodeInteger(Int.self, forKey: .priority) ?? ProtocolDefaults.priority
            runAt = try c.decodeIfPresent(Date.self, forKey: .runAt)
            delayMs = try c.decodeInteger(Int64.self, forKey: .delayMs)
            maxAttempts = try c.decodeInteger(Int.self, forKey: .maxAttempts) ?? ProtocolDefaults.maxAttempts
            timeoutMs = try c.decodeInteger(Int64.self, forKey: .timeoutMs)
            expiresAt = try c.decodeIfPresent(Date.self, forKey: .expiresAt)
            queueTimeoutMs = try c.decodeInteger(Int64.self, forKey: .queueTimeoutMs)
            uniqueKey = try c.decodeIfPresent(String.self, forKey: .uniqueKey)
            uniqueForMs = try c.decodeInteger(Int64.self, forKey: .uniqueForMs)
            tags = try c.decodeIfPresent([String].self, forKey: .tags) ?? []
            meta = try c.decodeIfPresent(JSONValue.self, forKey: .meta) ?? [:]
        }

        public func validate() throws(RPCErrorObject) {
            try validate(fieldPrefix: "")
        }

        /// `fieldPrefix` names the job inside a batch (`jobs[3].`), so the client knows which one is wrong.
        public func validate(fieldPrefix: String) throws(RPCErrorObject) {
            try Names.checkType(type, field: fieldPrefix + "type")
            try Names.checkQueue(queue, field: fieldPrefix + "queue")
            guard ProtocolDefaults.priorityRange.contains(priority) else {
                throw .invalidParams(field: fieldPrefix + "priority", "must be between 1 (most urgent) and 32767, got \(priority)")
            }
            guard ProtocolDefaults.maxAttemptsRange.contains(maxAttempts) else {
                throw .invalidParams(field: fieldPrefix + "max_attempts", "must be between 1 and 10000, got \(maxAttempts)")
            }
            if runAt != nil && delayMs != nil {
                throw .invalidParams(field: fieldPrefix + "delay_ms", "cannot be given together with run_at; choose one")
            }
            if expiresAt != nil && queueTimeoutMs != nil {
                throw .invalidParams(field: fieldPrefix + "queue_timeout_ms", "cannot be given together with expires_at; choose one")
            }
            for (name, value) in [("delay_ms", delayMs), ("queue_timeout_ms", queueTimeoutMs)] {
                if let value, value < 0 { throw .invalidParams(field: fieldPrefix + name, "must not be negative") }
            }
            if let timeoutMs, timeoutMs <= 0 { throw .invalidParams(field: fieldPrefix + "timeout_ms", "must be positive") }
            for (name, value) in [("delay_ms", delayMs), ("queue_timeout_ms", queueTimeoutMs), ("timeout_ms", timeoutMs)] {
                if let value, value > ProtocolDefaults.maxDurationMs {
                    throw .invalidParams(field: fieldPrefix + name, "must be at most \(ProtocolDefaults.maxDurationMs) (ten years), got \(value); for a job that far off, use run_at")
                }
            }
            if let uniqueKey, uniqueKey.isEmpty || uniqueKey.utf8.count > 255 {
                throw .invalidParams(field: fieldPrefix + "unique_key", "must be 1 to 255 bytes")
            }
            if let uniqueForMs {
                guard uniqueKey != nil else {
                    throw .invalidParams(field: fieldPrefix + "unique_for_ms", "needs a unique_key: it says how long that key stays taken after the job completes")
                }
                guard (1...ProtocolDefaults.maxUniqueForMs).contains(uniqueForMs) else {
                    throw .invalidParams(field: fieldPrefix + "unique_for_ms", "must be between 1 and \(ProtocolDefaults.maxUniqueForMs) (a year), got \(uniqueForMs)")
                }
            }
            guard case .object = meta else { throw .invalidParams(field: fieldPrefix + "meta", "must be an object") }
            for (index, tag) in tags.enumerated() where tag.isEmpty || tag.utf8.count > 100 {
                throw .invalidParams(field: fieldPrefix + "tags[\(index)]", "must be 1 to 100 bytes")
            }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var id: String
        public var state: JobState
        /// True when a job with the same `unique_key` was already waiting or running, or completed within its
        /// `unique_for_ms`: `id` and `state` are that job's, and nothing new was stored. Absent otherwise.
        public var duplicate: Bool?

        public init(id: String, state: JobState, duplicate: Bool? = nil) {
            self.id = id
            self.state = state
            self.duplicate = duplicate
        }
    }
}

/// `enqueue_batch`: stores all the jobs or none, in one transaction.
public enum EnqueueBatch: RPCMethod {
    public static let name = "enqueue_batch"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var jobs: [Enqueue.Params]
        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
        enum CodingKeys: String, CodingKey, CaseIterable { case jobs }
        public static let nestedFieldNames = ["jobs": Enqueue.Params.fieldNames]

        public init(jobs: [Enqueue.Params]) { self.jobs = jobs }

        public static func checkNestedFields(_ fields: JSONObject) throws(RPCErrorObject) {
            guard case .array(let jobs)? = fields["jobs"] else { return }
            for (index, job) in jobs.enumerated() {
                if case .object(let jobFields) = job { try Enqueue.Params.checkFields(jobFields, prefix: "jobs[\(index)].") }
            }
        }

        public func validate() throws(RPCErrorObject) {
            guard !jobs.isEmpty else { throw .invalidParams(field: "jobs", "must hold at least one job") }
            guard jobs.count <= ProtocolDefaults.maxBatchJobs else {
                throw .invalidParams(field: "jobs", "holds \(jobs.count) jobs; send at most \(ProtocolDefaults.maxBatchJobs) per batch")
            }
            for (index, job) in jobs.enumerated() { try job.validate(fieldPrefix: "jobs[\(index)].") }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var ids: [String]
        /// Positions (from 0) of jobs not stored because a job with their `unique_key` was already waiting or
        /// running, or completed within its `unique_for_ms`; their `ids` are that job's. Absent when there are none.
        public var duplicates: [Int]?

        public init(ids: [String], duplicates: [Int]? = nil) {
            self.ids = ids
            self.duplicates = duplicates
        }
    }
}
