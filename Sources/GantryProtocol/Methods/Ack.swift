import Foundation

/// `ack`: the job succeeded; `result` (any JSON) is kept with it.
/// `{"jsonrpc":"2.0","id":4,"method":"ack","params":{"id":"42"}}`
public enum Ack: RPCMethod {
    public static let name = "ack"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var id: String
        public var result: JSONValue?
        public static let fieldNames: Set<String> = ["id", "result"]

        public init(id: String, result: JSONValue? = nil) {
            self.id = id
            self.result = result
        }

        public func validate() throws(RPCErrorObject) { try JobID.check(id, field: "id") }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var ok: Bool
        /// True when an operator asked to cancel the job while it ran (`jobs.cancel`); it is kept as completed,
        /// since it did finish. Absent otherwise.
        public var cancelRequested: Bool?

        public init(ok: Bool = true, cancelRequested: Bool? = nil) {
            self.ok = ok
            self.cancelRequested = cancelRequested
        }

        enum CodingKeys: String, CodingKey {
            case ok
            case cancelRequested = "cancel_requested"
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
        public static let fieldNames: Set<String> = ["id", "error", "retry", "retry_in_ms"]

        public init(id: String, error: Failure, retry: Bool = true, retryInMs: Int64? = nil) {
            self.id = id
            self.error = error
            self.retry = retry
            self.retryInMs = retryInMs
        }

        enum CodingKeys: String, CodingKey {
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
        public static let fieldNames: Set<String> = ["ids", "lease_ms"]

        public init(ids: [String], leaseMs: Int64? = nil) {
            self.ids = ids
            self.leaseMs = leaseMs
        }

        enum CodingKeys: String, CodingKey {
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
