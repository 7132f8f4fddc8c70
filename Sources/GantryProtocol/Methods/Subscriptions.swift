import Foundation

/// What a subscription starts for each matching event: a job (its args the event's payload unless given), a
/// package's execution, or an operation. As `subscriptions.upsert` takes it, then stored with every default filled in.
public enum SubscriptionTarget: Sendable, Hashable {
    /// `{"type", "queue"?, "args"? ("$payload" by default: the event's payload), "priority"?, "max_attempts"?}`
    case job(type: String, queue: String, args: JSONValue, priority: Int, maxAttempts: Int)
    /// `{"operation": {"name", "branches", "queue"?, "globals"?}}`: started with the event in its globals
    /// (`event: {id, type, payload}`).
    case operation(name: String, queue: String, globals: JSONValue, plan: OperationPlan)
    /// `{"package", "config"?}`: an execution of the package, `config` overriding its keys, with the event in its
    /// globals as for an operation.
    case package(name: String, config: JSONValue?)

    /// Args that stand for the event's payload.
    public static let payloadArgs: JSONValue = "$payload"

    /// Checks a target as given (`field` names it in errors) and fills in its defaults.
    public static func parse(_ value: JSONValue, field: String = "target") throws(RPCErrorObject) -> SubscriptionTarget {
        guard let fields = value.objectValue else {
            throw .invalidParams(field: field, "must be a job ({\"type\": …}), a package ({\"package\": name}) or an operation ({\"operation\": {\"name\", \"branches\"}}), got \(value.typeName)")
        }
        if let package = fields["package"] {
            if let unknown = fields.keys.first(where: { !["package", "config"].contains($0) }) {
                throw .invalidParams(field: "\(field).\(unknown)", "is not a package target field; a package target takes package and config")
            }
            guard let name = package.stringValue else { throw .invalidParams(field: "\(field).package", "must be a package's name") }
            try PackageName.check(name, field: "\(field).package")
            let config = fields["config"]
            if let config { try PackageConfig.check(config, field: "\(field).config") }
            return .package(name: name, config: config)
        }
        if let operation = fields["operation"] {
            guard fields.count == 1, let inner = operation.objectValue else {
                throw .invalidParams(field: "\(field).operation", "must be an object {\"name\", \"branches\", \"queue\"?, \"globals\"?} and the target's only member")
            }
            if let unknown = inner.keys.first(where: { !["name", "branches", "queue", "globals"].contains($0) }) {
                throw .invalidParams(field: "\(field).operation.\(unknown)", "is not an operation field; it takes name, branches, queue, globals")
            }
            guard let name = inner["name"]?.stringValue else { throw .invalidParams(field: "\(field).operation.name", "is required") }
            try Names.checkType(name, field: "\(field).operation.name")
            let queue = try inner["queue"].map { queue throws(RPCErrorObject) in
                guard let name = queue.stringValue else { throw .invalidParams(field: "\(field).operation.queue", "must be a string") }
                try Names.checkQueue(name, field: "\(field).operation.queue")
                return name
            } ?? ProtocolDefaults.queue
            let globals = inner["globals"] ?? [:]
            guard case .object = globals else { throw .invalidParams(field: "\(field).operation.globals", "must be an object") }
            guard let branches = inner["branches"] else { throw .invalidParams(field: "\(field).operation.branches", "is required") }
            let plan = try OperationPlan.parse(branches, defaultQueue: queue, field: "\(field).operation.branches")
            return .operation(name: name, queue: queue, globals: globals, plan: plan)
        }
        if let unknown = fields.keys.first(where: { !["type", "queue", "args", "priority", "max_attempts"].contains($0) }) {
            throw .invalidParams(field: "\(field).\(unknown)", "is not a job target field; a job takes type, queue, args, priority, max_attempts")
        }
        guard let type = fields["type"]?.stringValue else {
            throw .invalidParams(field: "\(field).type", "is required: the job type to enqueue (or give operation)")
        }
        let step = try OperationPlan.parseStep(.object(fields.filter { $0.key != "args" }), defaultQueue: ProtocolDefaults.queue, field: field)
        let args = fields["args"] ?? payloadArgs
        if let (path, problem) = args.unstorable("\(field).args") { throw .invalidParams(field: path, problem) }
        return .job(type: type, queue: step.queue, args: args, priority: step.priority, maxAttempts: step.maxAttempts)
    }

    /// As stored and answered: every default filled in.
    public var value: JSONValue {
        switch self {
        case .job(let type, let queue, let args, let priority, let maxAttempts):
            return ["type": .string(type), "queue": .string(queue), "args": args, "priority": .int(Int64(priority)), "max_attempts": .int(Int64(maxAttempts))]
        case .operation(let name, let queue, let globals, let plan):
            let branches = (try? JSONValueEncoder.encode(plan)) ?? [:]
            return ["operation": ["name": .string(name), "queue": .string(queue), "globals": globals, "branches": branches]]
        case .package(let name, let config):
            var target: JSONObject = ["package": .string(name)]
            if let config { target["config"] = config }
            return .object(target)
        }
    }
}

/// A subscription: for every event whose type matches `event` and whose payload contains `filter`, its target
/// starts, in the publish's transaction.
public struct Subscription: Codable, Sendable, Hashable {
    public var name: String
    public var event: String
    public var filter: JSONValue?
    public var target: JSONValue
    public var paused: Bool
    /// `rpc` or `config` (the config file's `subscriptions:`).
    public var source: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(name: String, event: String, filter: JSONValue?, target: JSONValue, paused: Bool, source: String, createdAt: Date, updatedAt: Date) {
        self.name = name
        self.event = event
        self.filter = filter
        self.target = target
        self.paused = paused
        self.source = source
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case name, event, filter, target, paused, source
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

/// `subscriptions.upsert`: creates or replaces a subscription by name.
/// `{"jsonrpc":"2.0","id":1,"method":"subscriptions.upsert","params":{"name":"receipts","event":"order.*","filter":{"paid":true},"target":{"type":"receipt.send","queue":"mail"}}}`
public enum SubscriptionsUpsert: RPCMethod {
    public static let name = "subscriptions.upsert"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var name: String
        public var event: String
        public var filter: JSONValue?
        public var target: JSONValue

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
        enum CodingKeys: String, CodingKey, CaseIterable { case name, event, filter, target }

        public init(name: String, event: String, filter: JSONValue? = nil, target: JSONValue) {
            self.name = name
            self.event = event
            self.filter = filter
            self.target = target
        }

        public func validate() throws(RPCErrorObject) { _ = try checkedTarget() }

        /// The target, checked, with its defaults.
        public func checkedTarget() throws(RPCErrorObject) -> SubscriptionTarget {
            try SubscriptionName.check(name, field: "name")
            try EventType.checkPattern(event, field: "event")
            if let filter {
                guard case .object = filter else {
                    throw .invalidParams(field: "filter", "must be an object the payload must contain (like {\"paid\": true}), got \(filter.typeName)")
                }
                if let (path, problem) = filter.unstorable("filter") { throw .invalidParams(field: path, problem) }
            }
            return try SubscriptionTarget.parse(target)
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var subscription: Subscription
        public var created: Bool
        public init(subscription: Subscription, created: Bool) {
            self.subscription = subscription
            self.created = created
        }
    }
}

/// Subscription names, like cron schedule names: what people call them in logs and the CLI.
public enum SubscriptionName {
    public static func check(_ name: String, field: String) throws(RPCErrorObject) {
        guard !name.isEmpty, name.utf8.count <= 128,
              name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.:".unicodeScalars.contains($0)) })
        else {
            throw .invalidParams(field: field, "must be 1 to 128 characters of letters, digits, '_', '-', '.' or ':'")
        }
    }
}

/// Params naming one subscription.
public struct SubscriptionNameParams: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
    public var name: String
    public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
    enum CodingKeys: String, CodingKey, CaseIterable { case name }
    public init(name: String) { self.name = name }
    public func validate() throws(RPCErrorObject) { try SubscriptionName.check(name, field: "name") }
}

public enum SubscriptionsList: RPCMethod {
    public static let name = "subscriptions.list"
    public typealias Params = NoParams
    public struct Result: Codable, Sendable, Hashable {
        public var subscriptions: [Subscription]
        public init(subscriptions: [Subscription]) { self.subscriptions = subscriptions }
    }
}

public enum SubscriptionsDelete: RPCMethod {
    public static let name = "subscriptions.delete"
    public typealias Params = SubscriptionNameParams
    public typealias Result = TypesDelete.Result
}

/// `subscriptions.pause`: its events no longer start anything until `subscriptions.resume`.
public enum SubscriptionsPause: RPCMethod {
    public static let name = "subscriptions.pause"
    public typealias Params = SubscriptionNameParams
    public typealias Result = Subscription
}

public enum SubscriptionsResume: RPCMethod {
    public static let name = "subscriptions.resume"
    public typealias Params = SubscriptionNameParams
    public typealias Result = Subscription
}

extension RPCErrorObject {
    public static func noSuchSubscription(_ name: String) -> RPCErrorObject {
        RPCErrorObject(.notFound, "No subscription is named \(name). subscriptions.list shows the subscriptions there are.", data: ["name": .string(name)])
    }
}
