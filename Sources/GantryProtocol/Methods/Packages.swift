import Foundation

/// Package names: a package's executions are operations of the same name, so they follow job type rules.
public enum PackageName {
    public static func check(_ name: String, field: String) throws(RPCErrorObject) {
        try Names.checkType(name, field: field)
    }
}

/// A package's config: an object of keys its steps read; a run may override some of them.
public enum PackageConfig {
    public static func check(_ config: JSONValue, field: String) throws(RPCErrorObject) {
        guard case .object = config else {
            throw .invalidParams(field: field, "must be an object of keys and values (like {\"region\": \"eu\"}), got \(config.typeName)")
        }
        if let (path, problem) = config.unstorable(field) { throw .invalidParams(field: path, problem) }
    }
}

/// What starts a package: a cron schedule, events, and whether people may run it by hand.
public struct PackageTriggers: Codable, Sendable, Hashable {
    /// A five-field cron expression (or `@daily` and its kind), in `timezone`.
    public var cron: String?
    public var timezone: String
    /// Event types (exact, `prefix.*` or `*`); every matching event starts an execution.
    public var events: [String]
    /// Whether `packages.run` (and the dashboard's Run button) may start it.
    public var manual: Bool

    public static let maxEvents = 100

    /// As people read them: `cron 0 3 * * * (UTC); events report.requested; by hand`.
    public var summary: String {
        var parts: [String] = []
        if let cron { parts.append("cron \(cron) (\(timezone))") }
        if !events.isEmpty { parts.append("events " + events.joined(separator: ", ")) }
        if manual { parts.append("by hand") }
        return parts.isEmpty ? "nothing" : parts.joined(separator: "; ")
    }

    public init(cron: String? = nil, timezone: String = "UTC", events: [String] = [], manual: Bool = true) {
        self.cron = cron
        self.timezone = timezone
        self.events = events
        self.manual = manual
    }

    /// Checks `triggers` as given (absent: manual runs only) and fills in the defaults. The cron expression and
    /// time zone are checked by the broker, which knows cron.
    public static func parse(_ value: JSONValue?, field: String = "triggers") throws(RPCErrorObject) -> PackageTriggers {
        guard let value, value != .null else { return PackageTriggers() }
        guard let fields = value.objectValue else {
            throw .invalidParams(field: field, "must be an object {\"cron\"?, \"timezone\"?, \"events\"?, \"manual\"?}, got \(value.typeName)")
        }
        if let unknown = fields.keys.first(where: { !["cron", "timezone", "events", "manual"].contains($0) }) {
            throw .invalidParams(field: "\(field).\(unknown)", "is not a trigger; a package takes cron, timezone, events and manual")
        }
        var triggers = PackageTriggers()
        if let cron = fields["cron"], cron != .null {
            guard let text = cron.stringValue else { throw .invalidParams(field: "\(field).cron", "must be a cron expression such as \"0 3 * * *\"") }
            triggers.cron = text
        }
        if let timezone = fields["timezone"] {
            guard let text = timezone.stringValue else { throw .invalidParams(field: "\(field).timezone", "must be an IANA time zone name such as Europe/Berlin") }
            triggers.timezone = text
        }
        if let events = fields["events"] {
            guard let list = events.arrayValue, list.count <= maxEvents else {
                throw .invalidParams(field: "\(field).events", "must be an array of at most \(maxEvents) event types (order.paid, order.*, *)")
            }
            for (index, event) in list.enumerated() {
                guard let pattern = event.stringValue else { throw .invalidParams(field: "\(field).events[\(index)]", "must be an event type") }
                try EventType.checkPattern(pattern, field: "\(field).events[\(index)]")
                triggers.events.append(pattern)
            }
        }
        if let manual = fields["manual"] {
            guard case .bool(let flag) = manual else { throw .invalidParams(field: "\(field).manual", "must be true or false") }
            triggers.manual = flag
        }
        return triggers
    }
}

/// A package: steps run in order as one operation, with a config its steps read, started by cron, events or hand.
public struct Package: Codable, Sendable, Hashable {
    public var name: String
    public var description: String?
    /// Stored with every default filled in, as an operation's branch.
    public var steps: [OperationEntry]
    public var config: JSONValue
    public var triggers: PackageTriggers
    /// Inactive packages start nothing: not by cron, not by events, not by hand.
    public var active: Bool
    /// The queue of every step that names none.
    public var queue: String
    /// `rpc` or `config` (the config file's `packages:`).
    public var source: String
    /// The next cron tick, when it has a cron trigger and is active.
    public var nextRunAt: Date?
    public var createdAt: Date
    public var updatedAt: Date

    public init(name: String, description: String?, steps: [OperationEntry], config: JSONValue, triggers: PackageTriggers, active: Bool,
                queue: String, source: String, nextRunAt: Date?, createdAt: Date, updatedAt: Date) {
        self.name = name
        self.description = description
        self.steps = steps
        self.config = config
        self.triggers = triggers
        self.active = active
        self.queue = queue
        self.source = source
        self.nextRunAt = nextRunAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case name, description, steps, config, triggers, active, queue, source
        case nextRunAt = "next_run_at"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

/// What a step of a package's execution carries in `reserve`'s answer, beside `operation`: the package and its
/// config as it was when the execution started.
public struct PackageContext: Codable, Sendable, Hashable {
    public var name: String
    public var config: JSONValue

    public init(name: String, config: JSONValue) {
        self.name = name
        self.config = config
    }
}

/// `packages.upsert`: creates or replaces a package by name. Its executions started before keep the steps and
/// config they started with.
/// `{"jsonrpc":"2.0","id":1,"method":"packages.upsert","params":{"name":"nightly.report","steps":["report.fetch","report.mail"],"config":{"region":"eu"},"triggers":{"cron":"0 3 * * *"}}}`
public enum PackagesUpsert: RPCMethod {
    public static let name = "packages.upsert"
    public static let maxDescriptionLength = 1000

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var name: String
        public var description: String?
        public var steps: JSONValue
        public var config: JSONValue
        public var triggers: JSONValue?
        public var active: Bool
        public var queue: String

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
        enum CodingKeys: String, CodingKey, CaseIterable { case name, description, steps, config, triggers, active, queue }

        public init(name: String, description: String? = nil, steps: JSONValue, config: JSONValue = [:], triggers: JSONValue? = nil,
                    active: Bool = true, queue: String = ProtocolDefaults.queue) {
            self.name = name
            self.description = description
            self.steps = steps
            self.config = config
            self.triggers = triggers
            self.active = active
            self.queue = queue
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            description = try c.decodeIfPresent(String.self, forKey: .description)
            steps = try c.decode(JSONValue.self, forKey: .steps)
            config = try c.decodeIfPresent(JSONValue.self, forKey: .config) ?? [:]
            triggers = try c.decodeIfPresent(JSONValue.self, forKey: .triggers)
            active = try c.decodeIfPresent(Bool.self, forKey: .active) ?? true
            queue = try c.decodeIfPresent(String.self, forKey: .queue) ?? ProtocolDefaults.queue
        }

        public func validate() throws(RPCErrorObject) { _ = try checked() }

        /// The steps and triggers, checked, with their defaults.
        public func checked() throws(RPCErrorObject) -> (steps: [OperationEntry], triggers: PackageTriggers) {
            try PackageName.check(name, field: "name")
            try Names.checkQueue(queue, field: "queue")
            if let description, description.utf8.count > PackagesUpsert.maxDescriptionLength {
                throw .invalidParams(field: "description", "is longer than \(PackagesUpsert.maxDescriptionLength) bytes")
            }
            try PackageConfig.check(config, field: "config")
            var total = 0
            let entries = try OperationPlan.parseBranch(steps, defaultQueue: queue, field: "steps", total: &total)
            return (entries, try PackageTriggers.parse(triggers))
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var package: Package
        public var created: Bool
        public init(package: Package, created: Bool) {
            self.package = package
            self.created = created
        }
    }
}

/// Params naming one package.
public struct PackageNameParams: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
    public var name: String
    public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
    enum CodingKeys: String, CodingKey, CaseIterable { case name }
    public init(name: String) { self.name = name }
    public func validate() throws(RPCErrorObject) { try PackageName.check(name, field: "name") }
}

public enum PackagesList: RPCMethod {
    public static let name = "packages.list"
    public typealias Params = NoParams
    public struct Result: Codable, Sendable, Hashable {
        public var packages: [Package]
        public init(packages: [Package]) { self.packages = packages }
    }
}

public enum PackagesGet: RPCMethod {
    public static let name = "packages.get"
    public typealias Params = PackageNameParams
    public typealias Result = Package
}

/// `packages.delete`: refused while a subscription targets the package. Its executions stay until cleanup.
public enum PackagesDelete: RPCMethod {
    public static let name = "packages.delete"
    public typealias Params = PackageNameParams
    public typealias Result = TypesDelete.Result
}

/// `packages.run`: starts an execution by hand; `config` overrides keys of the package's config for this run.
/// `{"jsonrpc":"2.0","id":2,"method":"packages.run","params":{"name":"nightly.report","config":{"region":"us"}}}`
public enum PackagesRun: RPCMethod {
    public static let name = "packages.run"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var name: String
        public var config: JSONValue?

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
        enum CodingKeys: String, CodingKey, CaseIterable { case name, config }

        public init(name: String, config: JSONValue? = nil) {
            self.name = name
            self.config = config
        }

        public func validate() throws(RPCErrorObject) {
            try PackageName.check(name, field: "name")
            if let config { try PackageConfig.check(config, field: "config") }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        /// The execution's operation id (`operations.get` shows it too).
        public var id: String
        public var package: String
        public var state: OperationState

        public init(id: String, package: String, state: OperationState) {
            self.id = id
            self.package = package
            self.state = state
        }
    }
}

/// A saved execution's name and note.
public struct SavedExecution: Codable, Sendable, Hashable {
    public var name: String
    public var description: String?
    public var savedAt: Date

    public init(name: String, description: String?, savedAt: Date) {
        self.name = name
        self.description = description
        self.savedAt = savedAt
    }

    enum CodingKeys: String, CodingKey {
        case name, description
        case savedAt = "saved_at"
    }
}

/// One step of an execution: its last run, or `unprocessed` when the execution has not reached it.
public struct ExecutionStep: Codable, Sendable, Hashable {
    public var index: Int
    /// Its place in a parallel group (absent for a lone step).
    public var member: Int?
    public var type: String
    public var state: StepState
    public var jobID: String?
    public var attempts: Int
    public var startedAt: Date?
    public var finishedAt: Date?
    /// What its job's ack returned.
    public var result: JSONValue?
    public var error: JSONValue?

    public init(index: Int, member: Int? = nil, type: String, state: StepState, jobID: String? = nil, attempts: Int = 0,
                startedAt: Date? = nil, finishedAt: Date? = nil, result: JSONValue? = nil, error: JSONValue? = nil) {
        self.index = index
        self.member = member
        self.type = type
        self.state = state
        self.jobID = jobID
        self.attempts = attempts
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.result = result
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case index, member, type, state, attempts, result, error
        case jobID = "job_id"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
    }
}

/// How an execution was started.
public enum ExecutionTrigger: String, Codable, Sendable, CaseIterable {
    case manual, cron, event
}

/// One execution of a package: an operation started from it, with each of its steps.
public struct Execution: Codable, Sendable, Hashable {
    /// Its operation's id.
    public var id: String
    public var package: String
    public var state: OperationState
    public var trigger: ExecutionTrigger
    /// The config it ran with (the package's, with the run's overrides).
    public var config: JSONValue
    public var globals: JSONValue
    public var error: JSONValue?
    public var createdAt: Date
    public var finishedAt: Date?
    public var saved: SavedExecution?
    public var steps: [ExecutionStep]

    public init(id: String, package: String, state: OperationState, trigger: ExecutionTrigger, config: JSONValue, globals: JSONValue,
                error: JSONValue?, createdAt: Date, finishedAt: Date?, saved: SavedExecution?, steps: [ExecutionStep]) {
        self.id = id
        self.package = package
        self.state = state
        self.trigger = trigger
        self.config = config
        self.globals = globals
        self.error = error
        self.createdAt = createdAt
        self.finishedAt = finishedAt
        self.saved = saved
        self.steps = steps
    }

    enum CodingKeys: String, CodingKey {
        case id, package, state, trigger, config, globals, error, saved, steps
        case createdAt = "created_at"
        case finishedAt = "finished_at"
    }
}

/// `packages.executions`: a package's executions, newest first, each with its steps' states and results.
/// `{"jsonrpc":"2.0","id":3,"method":"packages.executions","params":{"name":"nightly.report","limit":10}}`
public enum PackagesExecutions: RPCMethod {
    public static let name = "packages.executions"
    public static let maxLimit = 100

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var name: String
        public var limit: Int
        public var cursor: String?

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
        enum CodingKeys: String, CodingKey, CaseIterable { case name, limit, cursor }

        public init(name: String, limit: Int = 20, cursor: String? = nil) {
            self.name = name
            self.limit = limit
            self.cursor = cursor
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            limit = try c.decodeInteger(Int.self, forKey: .limit) ?? 20
            cursor = try c.decodeIfPresent(String.self, forKey: .cursor)
        }

        public func validate() throws(RPCErrorObject) {
            try PackageName.check(name, field: "name")
            guard (1...PackagesExecutions.maxLimit).contains(limit) else {
                throw .invalidParams(field: "limit", "must be between 1 and \(PackagesExecutions.maxLimit), got \(limit)")
            }
            if let cursor, Int64(cursor) == nil { throw .invalidParams(field: "cursor", "must be a next_cursor from a previous page") }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var executions: [Execution]
        public var nextCursor: String?

        public init(executions: [Execution], nextCursor: String?) {
            self.executions = executions
            self.nextCursor = nextCursor
        }

        enum CodingKeys: String, CodingKey {
            case executions
            case nextCursor = "next_cursor"
        }
    }
}

/// `executions.save`: keeps an execution for good under a name (cleanup and retention never remove it).
/// `{"jsonrpc":"2.0","id":4,"method":"executions.save","params":{"id":"7","name":"before-migration"}}`
public enum ExecutionsSave: RPCMethod {
    public static let name = "executions.save"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var id: String
        public var name: String
        public var description: String?

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
        enum CodingKeys: String, CodingKey, CaseIterable { case id, name, description }

        public init(id: String, name: String, description: String? = nil) {
            self.id = id
            self.name = name
            self.description = description
        }

        public func validate() throws(RPCErrorObject) {
            guard Int64(id) != nil else { throw .invalidParams(field: "id", "must be an execution id as packages.run or packages.executions answers it") }
            try SubscriptionName.check(name, field: "name")
            if let description, description.utf8.count > PackagesUpsert.maxDescriptionLength {
                throw .invalidParams(field: "description", "is longer than \(PackagesUpsert.maxDescriptionLength) bytes")
            }
        }
    }

    public typealias Result = Execution
}

/// `executions.saved`: the saved executions, of one package or all, newest saved first.
public enum ExecutionsSaved: RPCMethod {
    public static let name = "executions.saved"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var package: String?
        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
        enum CodingKeys: String, CodingKey, CaseIterable { case package }
        public init(package: String? = nil) { self.package = package }
        public func validate() throws(RPCErrorObject) {
            if let package { try PackageName.check(package, field: "package") }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var executions: [Execution]
        public init(executions: [Execution]) { self.executions = executions }
    }
}

extension RPCErrorObject {
    public static func noSuchPackage(_ name: String, field: String? = nil) -> RPCErrorObject {
        if let field {
            return .invalidParams(field: field, "names no package (\"\(name)\"); packages.list shows the packages there are, packages.upsert makes one")
        }
        return RPCErrorObject(.notFound, "No package is named \(name). packages.list shows the packages there are; packages.upsert makes one.",
                              data: ["name": .string(name)])
    }

    public static func noSuchExecution(_ id: String) -> RPCErrorObject {
        RPCErrorObject(.notFound, "No execution has id \(id). packages.executions shows a package's executions.", data: ["id": .string(id)])
    }
}
