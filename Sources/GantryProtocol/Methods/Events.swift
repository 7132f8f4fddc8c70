import Foundation

/// What one event started: a subscription's job or operation.
public struct EventTrigger: Codable, Sendable, Hashable {
    /// The subscription that matched (absent when a package's own `triggers.events` did).
    public var subscription: String?
    /// The package started, for a package target or a package's `triggers.events`.
    public var package: String?
    public var jobID: String?
    public var operationID: String?
    /// Why nothing started (a package target whose package is inactive or gone).
    public var skipped: String?
    /// Its state now (`events.get` only): the job's or the operation's.
    public var state: String?

    public init(subscription: String? = nil, package: String? = nil, jobID: String? = nil, operationID: String? = nil,
                skipped: String? = nil, state: String? = nil) {
        self.subscription = subscription
        self.package = package
        self.jobID = jobID
        self.operationID = operationID
        self.skipped = skipped
        self.state = state
    }

    /// Who started it, for logs and pages: the subscription, or the package's own trigger.
    public var source: String { subscription ?? package.map { "package:\($0)" } ?? "?" }

    enum CodingKeys: String, CodingKey {
        case subscription, package, skipped, state
        case jobID = "job_id"
        case operationID = "operation_id"
    }
}

/// A published event and what it triggered.
public struct Event: Codable, Sendable, Hashable {
    public var id: String
    public var type: String
    public var payload: JSONValue
    public var key: String?
    /// The event this one replays.
    public var replayOf: String?
    public var publishedAt: Date
    public var triggered: [EventTrigger]

    public init(id: String, type: String, payload: JSONValue, key: String?, replayOf: String?, publishedAt: Date, triggered: [EventTrigger]) {
        self.id = id
        self.type = type
        self.payload = payload
        self.key = key
        self.replayOf = replayOf
        self.publishedAt = publishedAt
        self.triggered = triggered
    }

    enum CodingKeys: String, CodingKey {
        case id, type, payload, key, triggered
        case replayOf = "replay_of"
        case publishedAt = "published_at"
    }
}

/// `events.publish`: records an event and starts, in the same transaction, what every matching subscription
/// targets. With `key`, another publish of the same key within `dedupe_ms` answers the first event
/// (`duplicate: true`) and starts nothing.
/// `{"jsonrpc":"2.0","id":1,"method":"events.publish","params":{"type":"order.paid","payload":{"order_id":42}}}`
public enum EventsPublish: RPCMethod {
    public static let name = "events.publish"
    public static let defaultDedupeMs: Int64 = 86_400_000

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var type: String
        public var payload: JSONValue
        public var key: String?
        public var dedupeMs: Int64

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        enum CodingKeys: String, CodingKey, CaseIterable {
            case type, payload, key
            case dedupeMs = "dedupe_ms"
        }

        public init(type: String, payload: JSONValue = [:], key: String? = nil, dedupeMs: Int64 = EventsPublish.defaultDedupeMs) {
            self.type = type
            self.payload = payload
            self.key = key
            self.dedupeMs = dedupeMs
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            payload = try c.decodeIfPresent(JSONValue.self, forKey: .payload) ?? [:]
            key = try c.decodeIfPresent(String.self, forKey: .key)
            dedupeMs = try c.decodeInteger(Int64.self, forKey: .dedupeMs) ?? EventsPublish.defaultDedupeMs
        }

        public func validate() throws(RPCErrorObject) {
            try EventType.check(type, field: "type")
            if let (path, problem) = payload.unstorable("payload") { throw .invalidParams(field: path, problem) }
            if let key, key.isEmpty || key.utf8.count > 255 { throw .invalidParams(field: "key", "must be 1 to 255 bytes") }
            guard (0...ProtocolDefaults.maxDurationMs).contains(dedupeMs) else {
                throw .invalidParams(field: "dedupe_ms", "must be between 0 and \(ProtocolDefaults.maxDurationMs)")
            }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var id: String
        /// True when `key` named an event published before: its id and what it triggered then.
        public var duplicate: Bool
        public var triggered: [EventTrigger]

        public init(id: String, duplicate: Bool, triggered: [EventTrigger]) {
            self.id = id
            self.duplicate = duplicate
            self.triggered = triggered
        }
    }
}

/// Event types are dotted names people choose (`order.paid`); a subscription's `event` may end in `.*`.
public enum EventType {
    public static func check(_ type: String, field: String) throws(RPCErrorObject) {
        guard !type.isEmpty, type.utf8.count <= 255, !type.hasSuffix("*"),
              !type.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == " " })
        else {
            throw .invalidParams(field: field, "must be 1 to 255 bytes without spaces or control characters, not ending in * (like order.paid)")
        }
    }

    /// A subscription's `event`: an exact type, `prefix.*`, or `*` for every event.
    public static func checkPattern(_ pattern: String, field: String) throws(RPCErrorObject) {
        if pattern == "*" { return }
        if pattern.hasSuffix(".*") {
            let prefix = String(pattern.dropLast(2))
            guard !prefix.contains("*") else { throw .invalidParams(field: field, "may hold * only as its last part (order.*)") }
            try check(prefix, field: field)
            return
        }
        guard !pattern.contains("*") else { throw .invalidParams(field: field, "may hold * only as its last part (order.*), or be * alone") }
        try check(pattern, field: field)
    }
}

/// `events.get`: one event, its payload and everything it triggered with their states now.
public enum EventsGet: RPCMethod {
    public static let name = "events.get"
    public typealias Params = EventIDParams
    public typealias Result = Event
}

/// `events.list`: events newest first, by type and time, paged by cursor.
public enum EventsList: RPCMethod {
    public static let name = "events.list"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        /// An exact type, or `prefix.*`.
        public var type: String?
        public var since: Date?
        public var limit: Int
        public var cursor: String?

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
        enum CodingKeys: String, CodingKey, CaseIterable { case type, since, limit, cursor }

        public init(type: String? = nil, since: Date? = nil, limit: Int = 50, cursor: String? = nil) {
            self.type = type
            self.since = since
            self.limit = limit
            self.cursor = cursor
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decodeIfPresent(String.self, forKey: .type)
            since = try c.decodeIfPresent(Date.self, forKey: .since)
            limit = try c.decodeInteger(Int.self, forKey: .limit) ?? 50
            cursor = try c.decodeIfPresent(String.self, forKey: .cursor)
        }

        public func validate() throws(RPCErrorObject) {
            if let type { try EventType.checkPattern(type, field: "type") }
            guard (1...JobsList.maxLimit).contains(limit) else {
                throw .invalidParams(field: "limit", "must be between 1 and \(JobsList.maxLimit), got \(limit)")
            }
            if let cursor, Int64(cursor) == nil { throw .invalidParams(field: "cursor", "must be a next_cursor from a previous page") }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var events: [Event]
        public var nextCursor: String?

        public init(events: [Event], nextCursor: String?) {
            self.events = events
            self.nextCursor = nextCursor
        }

        enum CodingKeys: String, CodingKey {
            case events
            case nextCursor = "next_cursor"
        }
    }
}

/// `events.replay`: publishes the event's type and payload again (recorded as a replay of it, never deduplicated):
/// every subscription matching now triggers again.
public enum EventsReplay: RPCMethod {
    public static let name = "events.replay"
    public typealias Params = EventIDParams
    public typealias Result = EventsPublish.Result
}

/// Params naming one event.
public struct EventIDParams: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
    public var id: String
    public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
    enum CodingKeys: String, CodingKey, CaseIterable { case id }
    public init(id: String) { self.id = id }
    public func validate() throws(RPCErrorObject) {
        guard Int64(id) != nil else { throw .invalidParams(field: "id", "must be an event id as events.publish returns it") }
    }
}

extension RPCErrorObject {
    public static func noSuchEvent(_ id: String) -> RPCErrorObject {
        RPCErrorObject(.notFound, "No event has id \(id). events.list shows the events there are.", data: ["event_id": .string(id)])
    }
}
