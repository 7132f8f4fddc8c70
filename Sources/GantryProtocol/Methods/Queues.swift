import Foundation

/// `queues.pause`: the queue hands out nothing (on every broker, across restarts) until resumed; enqueueing
/// to it still works. `{"jsonrpc":"2.0","id":1,"method":"queues.pause","params":{"queue":"mail"}}`
public enum QueuesPause: RPCMethod {
    public static let name = "queues.pause"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var queue: String
        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
        enum CodingKeys: String, CodingKey, CaseIterable { case queue }
        public init(queue: String) { self.queue = queue }
        public func validate() throws(RPCErrorObject) { try Names.checkQueue(queue, field: "queue") }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var queue: String
        public var paused: Bool

        public init(queue: String, paused: Bool) {
            self.queue = queue
            self.paused = paused
        }
    }
}

/// `queues.resume`: a paused queue hands out jobs again; waiting workers wake at once.
public enum QueuesResume: RPCMethod {
    public static let name = "queues.resume"
    public typealias Params = QueuesPause.Params
    public typealias Result = QueuesPause.Result
}

/// `queues.list`: every queue that has jobs or is paused, with its counts, latency and whether it is paused.
public enum QueuesList: RPCMethod {
    public static let name = "queues.list"
    public typealias Params = NoParams

    public struct Result: Codable, Sendable, Hashable {
        public var queues: [String: Stats.QueueStats]
        public init(queues: [String: Stats.QueueStats]) { self.queues = queues }
    }
}

/// At most `limit` jobs of a queue start within any `period_ms`.
public struct RateLimit: Codable, Sendable, Hashable {
    public var limit: Int
    public var periodMs: Int64

    public init(limit: Int, periodMs: Int64) {
        self.limit = limit
        self.periodMs = periodMs
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case limit
        case periodMs = "period_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard let limit = try c.decodeInteger(Int.self, forKey: .limit) else {
            throw DecodingError.keyNotFound(CodingKeys.limit, .init(codingPath: c.codingPath, debugDescription: "required"))
        }
        guard let periodMs = try c.decodeInteger(Int64.self, forKey: .periodMs) else {
            throw DecodingError.keyNotFound(CodingKeys.periodMs, .init(codingPath: c.codingPath, debugDescription: "required"))
        }
        self.limit = limit
        self.periodMs = periodMs
    }
}

/// `queues.configure`: sets a queue's limits, across every worker and broker: `concurrency` (at most that many of
/// its jobs reserved at once) and `rate_limit` (at most `limit` starts in any `period_ms`). Absent or null means no
/// limit of that kind, so each call says the whole configuration.
/// `{"jsonrpc":"2.0","id":1,"method":"queues.configure","params":{"queue":"mail","concurrency":5,"rate_limit":{"limit":100,"period_ms":60000}}}`
public enum QueuesConfigure: RPCMethod {
    public static let name = "queues.configure"
    public static let maxConcurrency = 1_000_000
    public static let maxRateLimit = 1_000_000
    public static let maxRatePeriodMs: Int64 = 86_400_000

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var queue: String
        public var concurrency: Int?
        public var rateLimit: RateLimit?
        /// Raise `queue.backlog` when the oldest available job has waited longer than this.
        public var backlogAlertMs: Int64?

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        public static let nestedFieldNames = ["rate_limit": Set(RateLimit.CodingKeys.allCases.map(\.rawValue))]

        public static func checkNestedFields(_ fields: JSONObject) throws(RPCErrorObject) {
            guard case .object(let rate)? = fields["rate_limit"], let known = nestedFieldNames["rate_limit"] else { return }
            if let unknown = rate.keys.sorted().first(where: { !known.contains($0) }) {
                throw .invalidParams(field: "rate_limit.\(unknown)", "is not a field of rate_limit (fields: \(known.sorted().joined(separator: ", ")))")
            }
        }

        public init(queue: String, concurrency: Int? = nil, rateLimit: RateLimit? = nil, backlogAlertMs: Int64? = nil) {
            self.queue = queue
            self.concurrency = concurrency
            self.rateLimit = rateLimit
            self.backlogAlertMs = backlogAlertMs
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case queue, concurrency
            case rateLimit = "rate_limit"
            case backlogAlertMs = "backlog_alert_ms"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            queue = try c.decode(String.self, forKey: .queue)
            concurrency = try c.decodeInteger(Int.self, forKey: .concurrency)
            rateLimit = try c.decodeIfPresent(RateLimit.self, forKey: .rateLimit)
            backlogAlertMs = try c.decodeInteger(Int64.self, forKey: .backlogAlertMs)
        }

        public func validate() throws(RPCErrorObject) {
            try Names.checkQueue(queue, field: "queue")
            if let concurrency, !(1...QueuesConfigure.maxConcurrency).contains(concurrency) {
                throw .invalidParams(field: "concurrency", "must be between 1 and \(QueuesConfigure.maxConcurrency), or null for no limit, got \(concurrency); to stop a queue, pause it")
            }
            if let rateLimit {
                guard (1...QueuesConfigure.maxRateLimit).contains(rateLimit.limit) else {
                    throw .invalidParams(field: "rate_limit.limit", "must be between 1 and \(QueuesConfigure.maxRateLimit), got \(rateLimit.limit)")
                }
                guard (1...QueuesConfigure.maxRatePeriodMs).contains(rateLimit.periodMs) else {
                    throw .invalidParams(field: "rate_limit.period_ms", "must be between 1 and \(QueuesConfigure.maxRatePeriodMs) (a day), got \(rateLimit.periodMs)")
                }
            }
            if let backlogAlertMs, !(1000...ProtocolDefaults.maxDurationMs).contains(backlogAlertMs) {
                throw .invalidParams(field: "backlog_alert_ms", "must be a whole number of milliseconds, at least 1000, or null for no alert")
            }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var queue: String
        public var concurrency: Int?
        public var rateLimit: RateLimit?
        public var backlogAlertMs: Int64?

        public init(queue: String, concurrency: Int?, rateLimit: RateLimit?, backlogAlertMs: Int64? = nil) {
            self.queue = queue
            self.concurrency = concurrency
            self.rateLimit = rateLimit
            self.backlogAlertMs = backlogAlertMs
        }

        enum CodingKeys: String, CodingKey {
            case queue, concurrency
            case rateLimit = "rate_limit"
            case backlogAlertMs = "backlog_alert_ms"
        }
    }
}
