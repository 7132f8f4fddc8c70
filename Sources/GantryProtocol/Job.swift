import Foundation

/// One failed attempt, as kept in the job's history.
public struct JobError: Codable, Sendable, Hashable {
    public var attempt: Int
    public var message: String
    public var kind: String?
    public var backtrace: JSONValue?
    /// Why the attempt ended: `nack`, `lease_expired` or `connection_closed`.
    public var reason: String
    /// When the attempt began (its reservation); absent in records older than the dashboard.
    public var startedAt: Date?
    public var at: Date
    public var sessionID: String?
    /// The worker id the session announced in `hello`, when it did.
    public var worker: String?

    public init(attempt: Int, message: String, kind: String? = nil, backtrace: JSONValue? = nil, reason: String, at: Date,
                sessionID: String? = nil, worker: String? = nil) {
        self.attempt = attempt
        self.message = message
        self.kind = kind
        self.backtrace = backtrace
        self.reason = reason
        self.at = at
        self.sessionID = sessionID
        self.worker = worker
    }

    enum CodingKeys: String, CodingKey {
        case attempt, message, kind, backtrace, reason, at, worker
        case startedAt = "started_at"
        case sessionID = "session_id"
    }
}

/// A job as `reserve` hands it to a worker.
public struct ReservedJob: Codable, Sendable, Hashable {
    public var id: String
    public var type: String
    public var args: JSONValue
    public var queue: String
    public var priority: Int
    public var attempt: Int
    public var maxAttempts: Int
    public var enqueuedAt: Date
    public var leaseExpiresAt: Date
    public var meta: JSONValue
    /// Present when the job is a step of an operation.
    public var operation: StepContext?
    /// Present when the job is a step of a package's execution: the package and the config it runs with.
    public var package: PackageContext?

    public init(id: String, type: String, args: JSONValue, queue: String, priority: Int, attempt: Int, maxAttempts: Int,
                enqueuedAt: Date, leaseExpiresAt: Date, meta: JSONValue, operation: StepContext? = nil, package: PackageContext? = nil) {
        self.id = id
        self.type = type
        self.args = args
        self.queue = queue
        self.priority = priority
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.enqueuedAt = enqueuedAt
        self.leaseExpiresAt = leaseExpiresAt
        self.meta = meta
        self.operation = operation
        self.package = package
    }

    enum CodingKeys: String, CodingKey {
        case id, type, args, queue, priority, attempt, meta, operation, package
        case maxAttempts = "max_attempts"
        case enqueuedAt = "enqueued_at"
        case leaseExpiresAt = "lease_expires_at"
    }
}

/// The whole job, as `jobs.get` returns it: its state, every attempt's error, its timings and result.
public struct Job: Codable, Sendable, Hashable {
    public var id: String
    public var type: String
    public var queue: String
    public var args: JSONValue
    public var state: JobState
    public var priority: Int
    public var attempt: Int
    public var maxAttempts: Int
    public var runAt: Date
    public var enqueuedAt: Date
    public var reservedAt: Date?
    public var leaseExpiresAt: Date?
    public var finishedAt: Date?
    public var timeoutMs: Int64?
    public var expiresAt: Date?
    public var uniqueKey: String?
    public var tags: [String]
    public var meta: JSONValue
    public var errors: [JobError]
    public var result: JSONValue?
    /// When an operator asked to cancel it while a worker held it (it then ends `cancelled` unless acked).
    public var cancelRequestedAt: Date?

    public init(id: String, type: String, queue: String, args: JSONValue, state: JobState, priority: Int, attempt: Int,
                maxAttempts: Int, runAt: Date, enqueuedAt: Date, reservedAt: Date? = nil, leaseExpiresAt: Date? = nil,
                finishedAt: Date? = nil, timeoutMs: Int64? = nil, expiresAt: Date? = nil, uniqueKey: String? = nil,
                tags: [String] = [], meta: JSONValue = [:], errors: [JobError] = [], result: JSONValue? = nil,
                cancelRequestedAt: Date? = nil) {
        self.id = id
        self.type = type
        self.queue = queue
        self.args = args
        self.state = state
        self.priority = priority
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.runAt = runAt
        self.enqueuedAt = enqueuedAt
        self.reservedAt = reservedAt
        self.leaseExpiresAt = leaseExpiresAt
        self.finishedAt = finishedAt
        self.timeoutMs = timeoutMs
        self.expiresAt = expiresAt
        self.uniqueKey = uniqueKey
        self.tags = tags
        self.meta = meta
        self.errors = errors
        self.result = result
        self.cancelRequestedAt = cancelRequestedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, type, queue, args, state, priority, attempt, tags, meta, errors, result
        case maxAttempts = "max_attempts"
        case runAt = "run_at"
        case enqueuedAt = "enqueued_at"
        case reservedAt = "reserved_at"
        case leaseExpiresAt = "lease_expires_at"
        case finishedAt = "finished_at"
        case timeoutMs = "timeout_ms"
        case expiresAt = "expires_at"
        case uniqueKey = "unique_key"
        case cancelRequestedAt = "cancel_requested_at"
    }
}
