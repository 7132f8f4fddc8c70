import Foundation

/// `ack`: the job succeeded; `result` (any JSON) is kept with it. Or, with `ids`, several jobs at once (one
/// request, one commit), each with its result in `results` if it has one; ids whose lease is lost are answered
/// in `lost` instead of failing the request.
/// `{"jsonrpc":"2.0","id":4,"method":"ack","params":{"id":"42"}}`
/// `{"jsonrpc":"2.0","id":5,"method":"ack","params":{"ids":["42","43"],"results":{"43":{"sent":true}}}}`
public enum Ack: RPCMethod {
    public static let name = "ack"
    /// The most ids one `ack` takes.
    public static let maxIDs = 10_000

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        /// One job (the `id` form).
        public var id: String?
        public var result: JSONValue?
        /// Several jobs (the `ids` form).
        public var ids: [String]?
        /// Results of some of `ids`, by id.
        public var results: [String: JSONValue]?
        /// A step of an operation (`id` form): merged into the operation's globals with the ack.
        public var `set`: JSONValue?
        /// A step of an operation (`id` form): where the operation goes next instead of the branch's next step.
        public var jumpTo: JumpTarget?
        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, result, ids, results, `set`
            case jumpTo = "jump_to"
        }

        /// True when the ack carries what only a step's ack may.
        public var stepsOperation: Bool { self.set != nil || jumpTo != nil }

        public init(id: String, result: JSONValue? = nil, set: JSONValue? = nil, jumpTo: JumpTarget? = nil) {
            self.id = id
            self.result = result
            self.set = set
            self.jumpTo = jumpTo
        }

        public init(ids: [String], results: [String: JSONValue]? = nil) {
            self.ids = ids
            self.results = results
        }

        public func validate() throws(RPCErrorObject) {
            switch (id, ids) {
            case (let id?, nil):
                try JobID.check(id, field: "id")
                if results != nil { throw .invalidParams(field: "results", "goes with ids; with id, send result") }
                if let set {
                    guard case .object = set else {
                        throw .invalidParams(field: "set", "must be an object of globals to merge into the operation's, got \(set.typeName)")
                    }
                    if let (path, problem) = set.unstorable("set") { throw .invalidParams(field: path, problem) }
                }
                if let jumpTo {
                    try OperationPlan.checkBranchName(jumpTo.branch, field: jumpTo.step == nil ? "jump_to" : "jump_to.branch")
                    if let step = jumpTo.step { try Names.checkType(step, field: "jump_to.step") }
                }
            case (nil, let ids?):
                guard !ids.isEmpty, ids.count <= Ack.maxIDs else {
                    throw .invalidParams(field: "ids", "must hold 1 to \(Ack.maxIDs) job ids")
                }
                if result != nil { throw .invalidParams(field: "result", "goes with id; with ids, send results: {id: result}") }
                if set != nil { throw .invalidParams(field: "set", "goes with id: ack an operation's step on its own") }
                if jumpTo != nil { throw .invalidParams(field: "jump_to", "goes with id: ack an operation's step on its own") }
                var seen = Set<String>()
                for (index, id) in ids.enumerated() {
                    try JobID.check(id, field: "ids[\(index)]")
                    guard seen.insert(id).inserted else { throw .invalidParams(field: "ids[\(index)]", "names job \(id) a second time") }
                }
                if let stray = results?.keys.sorted().first(where: { !seen.contains($0) }) {
                    throw .invalidParams(field: "results.\(stray)", "is the result of a job that is not among ids")
                }
            case (nil, nil):
                throw .invalidParams(field: "id", "is required: the job to ack (or ids, for several)")
            case (_?, _?):
                throw .invalidParams(field: "ids", "cannot go with id: send one or the other")
            }
        }
    }

    /// A job of an `ids` ack that was not acked: this session does not hold its lease.
    public struct Lost: Codable, Sendable, Hashable {
        public var id: String
        /// The job's state now; absent when there is no such job.
        public var state: JobState?

        public init(id: String, state: JobState?) {
            self.id = id
            self.state = state
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        /// True when every job was acked (always, for the `id` form, which fails with lease lost otherwise).
        public var ok: Bool
        /// True when an operator asked to cancel the job while it ran (`jobs.cancel`); it is kept as completed,
        /// since it did finish. Absent otherwise. (`id` form)
        public var cancelRequested: Bool?
        /// The ids acked. (`ids` form)
        public var acked: [String]?
        /// The ids not acked, each with the job's state. (`ids` form)
        public var lost: [Lost]?
        /// Acked ids whose cancellation an operator asked while they ran. (`ids` form, absent when none)
        public var cancelRequestedIDs: [String]?

        public init(ok: Bool = true, cancelRequested: Bool? = nil) {
            self.ok = ok
            self.cancelRequested = cancelRequested
        }

        public init(acked: [String], lost: [Lost], cancelRequestedIDs: [String]) {
            self.ok = lost.isEmpty
            self.acked = acked
            self.lost = lost
            self.cancelRequestedIDs = cancelRequestedIDs.isEmpty ? nil : cancelRequestedIDs
        }

        enum CodingKeys: String, CodingKey {
            case ok, acked, lost
            case cancelRequested = "cancel_requested"
            case cancelRequestedIDs = "cancel_requested_ids"
        }
    }
}

/// `nack`: the attempt failed. With attempts left and `retry` true the job is scheduled again after a
/// backoff (or `retry_in_ms`); otherwise it is dead.
/// `{"jsonrpc":"2.0","id":5,"method":"nack","params":{"id":"42","error":{"message":"SMTP timeout"}}}`
public enum Nack: RPCMethod {
    public static let name = "nack"

    public struct Failure: Codable, Sendable, Hashable {
        public var message: String
        public var kind: String?
        /// A string, or an array of strings (one frame each).
        public var backtrace: JSONValue?

        public init(message: String, kind: String? = nil, backtrace: JSONValue? = nil) {
            self.message = message
            self.kind = kind
            self.backtrace = backtrace
        }
    }

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var id: String
        public var error: Failure
        public var retry: Bool
        public var retryInMs: Int64?
        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        public init(id: String, error: Failure, retry: Bool = true, retryInMs: Int64? = nil) {
            self.id = id
            self.error = error
            self.retry = retry
            self.retryInMs = retryInMs
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, error, retry
            case retryInMs = "retry_in_ms"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(String.self, forKey: .id)
            error = try c.decode(Failure.self, forKey: .error)
            retry = try c.decodeIfPresent(Bool.self, forKey: .retry) ?? true
            retryInMs = try c.decodeInteger(Int64.self, forKey: .retryInMs)
        }

        public func validate() throws(RPCErrorObject) {
            try JobID.check(id, field: "id")
            if let retryInMs, retryInMs < 0 { throw .invalidParams(field: "retry_in_ms", "must not be negative") }
            switch error.backtrace {
            case nil, .string?: break
            case .array(let frames)? where frames.allSatisfy({ $0.stringValue != nil }): break
            default: throw .invalidParams(field: "error.backtrace", "must be a string or an array of strings")
            }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        /// `scheduled` (or `available`, with `retry_in_ms: 0`) when it will be retried, `dead` when not, and
        /// `cancelled` when an operator asked to cancel it while it ran.
        public var state: JobState
        public var nextRunAt: Date?

        public init(state: JobState, nextRunAt: Date? = nil) {
            self.state = state
            self.nextRunAt = nextRunAt
        }

        enum CodingKeys: String, CodingKey {
            case state
            case nextRunAt = "next_run_at"
        }
    }
}

/// `extend`: pushes the leases of jobs this connection holds further out (a heartbeat for long jobs).
/// `{"jsonrpc":"2.0","id":6,"method":"extend","params":{"ids":["42"],"lease_ms":60000}}`
public enum Extend: RPCMethod {
    public static let name = "extend"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var ids: [String]
        public var leaseMs: Int64?
        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        public init(ids: [String], leaseMs: Int64? = nil) {
            self.ids = ids
            self.leaseMs = leaseMs
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case ids
            case leaseMs = "lease_ms"
        }

        public func validate() throws(RPCErrorObject) {
            guard !ids.isEmpty, ids.count <= 10_000 else { throw .invalidParams(field: "ids", "must hold 1 to 10000 job ids") }
            for (index, id) in ids.enumerated() { try JobID.check(id, field: "ids[\(index)]") }
            if let leaseMs, leaseMs < 1000 { throw .invalidParams(field: "lease_ms", "must be at least 1000 (one second)") }
        }
    }

    public struct Lease: Codable, Sendable, Hashable {
        public var id: String
        public var leaseExpiresAt: Date
        /// True when an operator asked to cancel this job (`jobs.cancel`): stop working on it and nack it; it
        /// ends `cancelled` and is not retried. Absent otherwise.
        public var cancelRequested: Bool?

        public init(id: String, leaseExpiresAt: Date, cancelRequested: Bool? = nil) {
            self.id = id
            self.leaseExpiresAt = leaseExpiresAt
            self.cancelRequested = cancelRequested
        }

        enum CodingKeys: String, CodingKey {
            case id
            case leaseExpiresAt = "lease_expires_at"
            case cancelRequested = "cancel_requested"
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        /// The leases that were extended.
        public var leases: [Lease]
        /// Ids this connection does not hold (lease ran out, or never reserved here): stop working on them.
        public var lost: [String]

        public init(leases: [Lease], lost: [String]) {
            self.leases = leases
            self.lost = lost
        }
    }
}

/// Job ids are opaque strings to clients; this broker makes them from a 64-bit sequence.
public enum JobID {
    public static func check(_ id: String, field: String) throws(RPCErrorObject) {
        guard !id.isEmpty, id.utf8.count <= 64 else { throw .invalidParams(field: field, "must be a job id as returned by enqueue") }
    }
}
