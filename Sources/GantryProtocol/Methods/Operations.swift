import Foundation

/// Where an operation stands.
public enum OperationState: String, Codable, Sendable, CaseIterable {
    case running, completed, failed, cancelled
}

/// Where a step of an operation stands. `pending`: its job waits; `running`: a worker holds it; `unprocessed`:
/// not reached yet.
public enum StepState: String, Codable, Sendable, CaseIterable {
    case completed, running, pending, unprocessed, failed, cancelled
}

/// What a step's job carries in `reserve`'s answer: which operation, where in it, and the globals as they are
/// when the job is handed out.
public struct StepContext: Codable, Sendable, Hashable {
    public var id: String
    public var name: String
    public var branch: String
    /// The step's job type.
    public var step: String
    /// The step's place in its branch (from 0); the steps of a parallel group share one.
    public var index: Int
    public var globals: JSONValue

    public init(id: String, name: String, branch: String, step: String, index: Int, globals: JSONValue) {
        self.id = id
        self.name = name
        self.branch = branch
        self.step = step
        self.index = index
        self.globals = globals
    }
}

/// One run of a step in `operations.get`, or a step not reached yet (`unprocessed`, without job).
public struct OperationStepRun: Codable, Sendable, Hashable {
    public var branch: String
    public var index: Int
    /// Its place in a parallel group (absent for a lone step).
    public var member: Int?
    public var type: String
    public var state: StepState
    public var jobID: String?
    public var attempts: Int
    public var startedAt: Date?
    public var finishedAt: Date?
    public var durationMs: Int64?
    /// The last failed attempt's error (`message`, `kind`, `backtrace`), when it failed or was retried.
    public var error: JSONValue?
    /// True for a failed run that `operations.retry` (or `jobs.retry`) replaced with a new one.
    public var retried: Bool?

    public init(branch: String, index: Int, member: Int? = nil, type: String, state: StepState, jobID: String? = nil,
                attempts: Int = 0, startedAt: Date? = nil, finishedAt: Date? = nil, durationMs: Int64? = nil,
                error: JSONValue? = nil, retried: Bool? = nil) {
        self.branch = branch
        self.index = index
        self.member = member
        self.type = type
        self.state = state
        self.jobID = jobID
        self.attempts = attempts
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.durationMs = durationMs
        self.error = error
        self.retried = retried
    }

    enum CodingKeys: String, CodingKey {
        case branch, index, member, type, state, attempts, error, retried
        case jobID = "job_id"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case durationMs = "duration_ms"
    }
}

/// An operation: its globals, the branch and place it is at, the path of branches it took and (in
/// `operations.get`) its plan and every step.
public struct OperationRecord: Codable, Sendable, Hashable {
    public var id: String
    public var name: String
    public var key: String?
    public var state: OperationState
    public var queue: String
    public var globals: JSONValue
    public var branch: String
    public var index: Int
    /// The branches entered, in order (`["main", "refund", "main"]`).
    public var path: [String]
    /// Why it failed: the step (`branch`, `index`, `type`, `job_id`) and its error.
    public var error: JSONValue?
    public var createdAt: Date
    public var updatedAt: Date
    public var finishedAt: Date?
    /// Its plan (`operations.get` only).
    public var branches: OperationPlan?
    /// Every step run so far, then the steps of the current branch not reached yet (`operations.get` only).
    public var steps: [OperationStepRun]?

    public init(id: String, name: String, key: String?, state: OperationState, queue: String, globals: JSONValue, branch: String,
                index: Int, path: [String], error: JSONValue?, createdAt: Date, updatedAt: Date, finishedAt: Date?,
                branches: OperationPlan? = nil, steps: [OperationStepRun]? = nil) {
        self.id = id
        self.name = name
        self.key = key
        self.state = state
        self.queue = queue
        self.globals = globals
        self.branch = branch
        self.index = index
        self.path = path
        self.error = error
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
        self.branches = branches
        self.steps = steps
    }

    enum CodingKeys: String, CodingKey {
        case id, name, key, state, queue, globals, branch, index, path, error, branches, steps
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case finishedAt = "finished_at"
    }
}

/// `operations.start`: starts an operation at the first step of branch `main`. With `key`, starting the same
/// `name` and `key` again answers the operation already started (`created: false`).
/// `{"jsonrpc":"2.0","id":1,"method":"operations.start","params":{"name":"signup","globals":{"user_id":7},"branches":{"main":["account.create","welcome.send"]}}}`
public enum OperationsStart: RPCMethod {
    public static let name = "operations.start"
    public static let maxKeyLength = 255

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var name: String
        public var globals: JSONValue
        public var branches: JSONValue
        /// The queue of every step that names none.
        public var queue: String
        public var key: String?

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, globals, branches, queue, key
        }

        public init(name: String, globals: JSONValue = [:], branches: JSONValue, queue: String = ProtocolDefaults.queue, key: String? = nil) {
            self.name = name
            self.globals = globals
            self.branches = branches
            self.queue = queue
            self.key = key
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            globals = try c.decodeIfPresent(JSONValue.self, forKey: .globals) ?? [:]
            branches = try c.decode(JSONValue.self, forKey: .branches)
            queue = try c.decodeIfPresent(String.self, forKey: .queue) ?? ProtocolDefaults.queue
            key = try c.decodeIfPresent(String.self, forKey: .key)
        }

        public func validate() throws(RPCErrorObject) {
            _ = try plan()
        }

        /// Every queue its steps go to (a token limited to some queues must cover them all).
        public var queues: [String] {
            (try? plan())?.queues ?? [queue]
        }

        /// The checked plan, every default filled in.
        public func plan() throws(RPCErrorObject) -> OperationPlan {
            try Names.checkType(name, field: "name")
            try Names.checkQueue(queue, field: "queue")
            guard case .object = globals else {
                throw .invalidParams(field: "globals", "must be an object of values the steps share, got \(globals.typeName)")
            }
            if let (path, problem) = globals.unstorable("globals") { throw .invalidParams(field: path, problem) }
            if let key, key.isEmpty || key.utf8.count > OperationsStart.maxKeyLength {
                throw .invalidParams(field: "key", "must be 1 to \(OperationsStart.maxKeyLength) bytes")
            }
            return try OperationPlan.parse(branches, defaultQueue: queue)
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var id: String
        public var state: OperationState
        /// False when `key` named an operation started before (its id and state are answered).
        public var created: Bool

        public init(id: String, state: OperationState, created: Bool) {
            self.id = id
            self.state = state
            self.created = created
        }
    }
}

/// Params naming one operation.
public struct OperationIDParams: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
    public var id: String
    public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
    enum CodingKeys: String, CodingKey, CaseIterable { case id }
    public init(id: String) { self.id = id }
    public func validate() throws(RPCErrorObject) {
        guard Int64(id) != nil else { throw .invalidParams(field: "id", "must be an operation id as operations.start returns it") }
    }
}

/// `operations.get`: the operation with its plan and every step: state, attempts, times, error.
public enum OperationsGet: RPCMethod {
    public static let name = "operations.get"
    public typealias Params = OperationIDParams
    public typealias Result = OperationRecord
}

/// `operations.list`: operations newest first, filtered by name, state and globals (JSON containment), paged
/// by cursor.
/// `{"jsonrpc":"2.0","id":2,"method":"operations.list","params":{"globals":{"subscription_id":7}}}`
public enum OperationsList: RPCMethod {
    public static let name = "operations.list"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var name: String?
        public var state: OperationState?
        public var globals: JSONValue?
        public var limit: Int
        public var cursor: String?

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        enum CodingKeys: String, CodingKey, CaseIterable { case name, state, globals, limit, cursor }

        public init(name: String? = nil, state: OperationState? = nil, globals: JSONValue? = nil, limit: Int = 50, cursor: String? = nil) {
            self.name = name
            self.state = state
            self.globals = globals
            self.limit = limit
            self.cursor = cursor
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decodeIfPresent(String.self, forKey: .name)
            state = try c.decodeIfPresent(OperationState.self, forKey: .state)
            globals = try c.decodeIfPresent(JSONValue.self, forKey: .globals)
            limit = try c.decodeInteger(Int.self, forKey: .limit) ?? 50
            cursor = try c.decodeIfPresent(String.self, forKey: .cursor)
        }

        public func validate() throws(RPCErrorObject) {
            if let name { try Names.checkType(name, field: "name") }
            guard (1...JobsList.maxLimit).contains(limit) else {
                throw .invalidParams(field: "limit", "must be between 1 and \(JobsList.maxLimit), got \(limit)")
            }
            if let cursor, Int64(cursor) == nil { throw .invalidParams(field: "cursor", "must be a next_cursor from a previous page") }
            if let globals {
                guard case .object = globals else {
                    throw .invalidParams(field: "globals", "must be an object to look for inside operations' globals (like {\"subscription_id\": 7}), got \(globals.typeName)")
                }
                if let (path, problem) = globals.unstorable("globals") { throw .invalidParams(field: path, problem) }
            }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        /// Without `branches` and `steps` (`operations.get` has them).
        public var operations: [OperationRecord]
        public var nextCursor: String?

        public init(operations: [OperationRecord], nextCursor: String?) {
            self.operations = operations
            self.nextCursor = nextCursor
        }

        enum CodingKeys: String, CodingKey {
            case operations
            case nextCursor = "next_cursor"
        }
    }
}

/// `operations.retry`: resumes a failed or cancelled operation at the step that did not complete (the steps
/// completed before it are not run again), or with `from: "start"` runs it again from the first step of `main`
/// (a completed one too).
/// `{"jsonrpc":"2.0","id":3,"method":"operations.retry","params":{"id":"7"}}`
public enum OperationsRetry: RPCMethod {
    public static let name = "operations.retry"

    public enum From: String, Codable, Sendable, CaseIterable {
        case failed, start
    }

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var id: String
        public var from: From

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
        enum CodingKeys: String, CodingKey, CaseIterable { case id, from }

        public init(id: String, from: From = .failed) {
            self.id = id
            self.from = from
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(String.self, forKey: .id)
            from = try c.decodeIfPresent(From.self, forKey: .from) ?? .failed
        }

        public func validate() throws(RPCErrorObject) { try OperationIDParams(id: id).validate() }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var id: String
        public var state: OperationState
        /// The step jobs enqueued to resume it.
        public var jobIDs: [String]

        public init(id: String, state: OperationState, jobIDs: [String]) {
            self.id = id
            self.state = state
            self.jobIDs = jobIDs
        }

        enum CodingKeys: String, CodingKey {
            case id, state
            case jobIDs = "job_ids"
        }
    }
}

/// `operations.cancel`: the operation ends `cancelled`; its waiting steps are cancelled and its running ones asked
/// to stop (as `jobs.cancel` does). `operations.retry` can resume it later.
/// `{"jsonrpc":"2.0","id":4,"method":"operations.cancel","params":{"id":"7"}}`
public enum OperationsCancel: RPCMethod {
    public static let name = "operations.cancel"
    public typealias Params = OperationIDParams

    public struct Result: Codable, Sendable, Hashable {
        public var id: String
        public var state: OperationState
        /// Waiting step jobs now cancelled.
        public var cancelled: Int
        /// Running step jobs whose workers are asked to stop.
        public var stopping: Int

        public init(id: String, state: OperationState, cancelled: Int, stopping: Int) {
            self.id = id
            self.state = state
            self.cancelled = cancelled
            self.stopping = stopping
        }
    }
}

extension RPCErrorObject {
    public static func noSuchOperation(_ id: String) -> RPCErrorObject {
        RPCErrorObject(.notFound, "No operation has id \(id). operations.list shows the operations there are.", data: ["operation_id": .string(id)])
    }

    public static func operationWrongState(_ id: String, state: OperationState, action: String, allowed: String) -> RPCErrorObject {
        RPCErrorObject(
            .wrongState, "Operation \(id) is \(state.rawValue); \(action) applies to \(allowed) operations.",
            data: ["operation_id": .string(id), "state": .string(state.rawValue)])
    }
}
