import Foundation

/// Where a cron schedule or a queue limit came from: a broker's config file (applied on start, removed when
/// taken out of the file) or an RPC (`cron.upsert`, `queues.configure`; kept until deleted or cleared).
public enum SettingSource: String, Codable, Sendable {
    case config, rpc
}

/// A recurring job: every time `cron` fires (on the wall clock of `timezone`), one job of `type` with `args` is
/// enqueued on `queue`, however many brokers run.
public struct CronSchedule: Codable, Sendable, Hashable {
    public var name: String
    public var cron: String
    public var timezone: String
    public var type: String
    public var args: JSONValue
    public var queue: String
    public var priority: Int
    public var description: String?
    public var source: SettingSource
    public var paused: Bool
    public var pausedAt: Date?
    /// When it fires next; absent while paused or when the expression never fires again.
    public var nextRunAt: Date?
    public var lastRunAt: Date?
    public var lastJobID: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(name: String, cron: String, timezone: String, type: String, args: JSONValue, queue: String, priority: Int,
                description: String?, source: SettingSource, paused: Bool, pausedAt: Date?, nextRunAt: Date?, lastRunAt: Date?,
                lastJobID: String?, createdAt: Date, updatedAt: Date) {
        self.name = name
        self.cron = cron
        self.timezone = timezone
        self.type = type
        self.args = args
        self.queue = queue
        self.priority = priority
        self.description = description
        self.source = source
        self.paused = paused
        self.pausedAt = pausedAt
        self.nextRunAt = nextRunAt
        self.lastRunAt = lastRunAt
        self.lastJobID = lastJobID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case name, cron, timezone, type, args, queue, priority, description, source, paused
        case pausedAt = "paused_at"
        case nextRunAt = "next_run_at"
        case lastRunAt = "last_run_at"
        case lastJobID = "last_job_id"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    /// Schedule names read well in logs and on the command line: the same characters as queue names.
    public static func checkName(_ name: String, field: String = "name") throws(RPCErrorObject) {
        try Names.checkQueue(name, field: field)
    }
}

/// `cron.list`: every schedule, by name.
/// `{"jsonrpc":"2.0","id":1,"method":"cron.list"}`
public enum CronList: RPCMethod {
    public static let name = "cron.list"
    public typealias Params = NoParams

    public struct Result: Codable, Sendable, Hashable {
        public var schedules: [CronSchedule]
        public init(schedules: [CronSchedule]) { self.schedules = schedules }
    }
}

/// `cron.upsert`: creates a schedule or replaces its definition (its paused state and run history are kept; its
/// next run is worked out again if `cron` or `timezone` changed).
/// `{"jsonrpc":"2.0","id":1,"method":"cron.upsert","params":{"name":"nightly","cron":"0 3 * * *","type":"report.build"}}`
public enum CronUpsert: RPCMethod {
    public static let name = "cron.upsert"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var name: String
        public var cron: String
        public var type: String
        public var args: JSONValue
        public var queue: String
        public var priority: Int
        public var description: String?
        public var timezone: String

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        public init(name: String, cron: String, type: String, args: JSONValue = .emptyArray, queue: String = ProtocolDefaults.queue,
                    priority: Int = ProtocolDefaults.priority, description: String? = nil, timezone: String = "UTC") {
            self.name = name
            self.cron = cron
            self.type = type
            self.args = args
            self.queue = queue
            self.priority = priority
            self.description = description
            self.timezone = timezone
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, cron, type, args, queue, priority, description, timezone
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            cron = try c.decode(String.self, forKey: .cron)
            type = try c.decode(String.self, forKey: .type)
            args = try c.decodeIfPresent(JSONValue.self, forKey: .args) ?? .emptyArray
            queue = try c.decodeIfPresent(String.self, forKey: .queue) ?? ProtocolDefaults.queue
            priority = try c.decodeInteger(Int.self, forKey: .priority) ?? ProtocolDefaults.priority
            description = try c.decodeIfPresent(String.self, forKey: .description)
            timezone = try c.decodeIfPresent(String.self, forKey: .timezone) ?? "UTC"
        }

        /// The cron expression and the time zone are checked by the broker, which knows its zone database.
        public func validate() throws(RPCErrorObject) {
            try CronSchedule.checkName(name)
            try Names.checkType(type, field: "type")
            try Names.checkQueue(queue, field: "queue")
            guard ProtocolDefaults.priorityRange.contains(priority) else {
                throw .invalidParams(field: "priority", "must be between 1 (most urgent) and 32767, got \(priority)")
            }
            if let description, description.utf8.count > 1000 { throw .invalidParams(field: "description", "must be at most 1000 bytes") }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var schedule: CronSchedule
        /// False when a schedule of that name existed and was replaced.
        public var created: Bool

        public init(schedule: CronSchedule, created: Bool) {
            self.schedule = schedule
            self.created = created
        }
    }
}

/// Params naming one schedule (`cron.delete`, `cron.pause`, `cron.resume`, `cron.trigger`).
public struct CronNameParams: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
    public var name: String
    public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
    enum CodingKeys: String, CodingKey, CaseIterable { case name }
    public init(name: String) { self.name = name }
    public func validate() throws(RPCErrorObject) { try CronSchedule.checkName(name) }
}

/// `cron.delete`: removes a schedule (jobs it already enqueued stay). A schedule from a config file comes back
/// when that broker restarts unless it is taken out of the file.
public enum CronDelete: RPCMethod {
    public static let name = "cron.delete"
    public typealias Params = CronNameParams

    public struct Result: Codable, Sendable, Hashable {
        public var deleted: Bool
        public init(deleted: Bool) { self.deleted = deleted }
    }
}

/// `cron.pause`: the schedule stops firing (kept across restarts); ticks while paused are skipped, not caught up.
public enum CronPause: RPCMethod {
    public static let name = "cron.pause"
    public typealias Params = CronNameParams

    public struct Result: Codable, Sendable, Hashable {
        public var schedule: CronSchedule
        public init(schedule: CronSchedule) { self.schedule = schedule }
    }
}

/// `cron.resume`: a paused schedule fires again from its next tick.
public enum CronResume: RPCMethod {
    public static let name = "cron.resume"
    public typealias Params = CronNameParams
    public typealias Result = CronPause.Result
}

/// `cron.trigger`: enqueues one run now, paused or not, without moving the next tick.
public enum CronTrigger: RPCMethod {
    public static let name = "cron.trigger"
    public typealias Params = CronNameParams

    public struct Result: Codable, Sendable, Hashable {
        /// The job just enqueued.
        public var id: String
        public var schedule: CronSchedule

        public init(id: String, schedule: CronSchedule) {
            self.id = id
            self.schedule = schedule
        }
    }
}

extension RPCErrorObject {
    public static func noSuchSchedule(_ name: String) -> RPCErrorObject {
        RPCErrorObject(.notFound, "No cron schedule is named \(name). cron.list shows the schedules there are.", data: ["name": .string(name)])
    }
}
