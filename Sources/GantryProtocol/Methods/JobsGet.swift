import Foundation

/// `jobs.get`: the whole job, live or finished.
/// `{"jsonrpc":"2.0","id":7,"method":"jobs.get","params":{"id":"42"}}`
public enum JobsGet: RPCMethod {
    public static let name = "jobs.get"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var id: String
        public static let fieldNames: Set<String> = ["id"]
        public init(id: String) { self.id = id }
        public func validate() throws(RPCErrorObject) { try JobID.check(id, field: "id") }
    }

    public typealias Result = Job
}

/// `stats`: counts per queue and the broker's own state, read from maintained counters.
/// `{"jsonrpc":"2.0","id":8,"method":"stats"}`
public enum Stats: RPCMethod {
    public static let name = "stats"
    public typealias Params = NoParams

    public struct QueueStats: Codable, Sendable, Hashable {
        /// Jobs in each state, for every state (zero included).
        public var counts: [String: Int64]
        /// How long the oldest available job has waited, in milliseconds (0 when none waits).
        public var latencyMs: Int64
        /// Attempts that ended, successfully or not, since the queue was first used.
        public var processed: Int64
        /// Attempts that failed (nack, lease expired, connection closed).
        public var failed: Int64
        /// Whether an operator paused the queue (it hands out nothing meanwhile), and since when.
        public var paused: Bool
        public var pausedAt: Date?

        public init(counts: [String: Int64], latencyMs: Int64, processed: Int64, failed: Int64, paused: Bool = false, pausedAt: Date? = nil) {
            self.counts = counts
            self.latencyMs = latencyMs
            self.processed = processed
            self.failed = failed
            self.paused = paused
            self.pausedAt = pausedAt
        }

        /// A queue with nothing in it yet: every state counted zero.
        public static var empty: QueueStats {
            QueueStats(counts: Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, 0) }), latencyMs: 0, processed: 0, failed: 0)
        }

        enum CodingKeys: String, CodingKey {
            case counts, processed, failed, paused
            case latencyMs = "latency_ms"
            case pausedAt = "paused_at"
        }
    }

    public struct BrokerStats: Codable, Sendable, Hashable {
        public var id: String
        public var version: String
        public var uptimeMs: Int64
        public var connections: Int
        public var workers: Int

        public init(id: String, version: String, uptimeMs: Int64, connections: Int, workers: Int) {
            self.id = id
            self.version = version
            self.uptimeMs = uptimeMs
            self.connections = connections
            self.workers = workers
        }

        enum CodingKeys: String, CodingKey {
            case id, version, connections, workers
            case uptimeMs = "uptime_ms"
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var queues: [String: QueueStats]
        public var broker: BrokerStats

        public init(queues: [String: QueueStats], broker: BrokerStats) {
            self.queues = queues
            self.broker = broker
        }
    }
}

/// `jobs.retry`: brings a dead, expired or cancelled job back to `available`, its error history kept. A job that
/// used all its attempts gets one more.
/// `{"jsonrpc":"2.0","id":9,"method":"jobs.retry","params":{"id":"42"}}`
public enum JobsRetry: RPCMethod {
    public static let name = "jobs.retry"
    public typealias Params = JobsGet.Params

    /// The job's id and its new state, `available`.
    public typealias Result = Enqueue.Result
}

/// `jobs.list`: jobs newest first, live and finished, filtered and paged by cursor.
/// `{"jsonrpc":"2.0","id":10,"method":"jobs.list","params":{"state":"dead","queue":"mail","limit":20}}`
public enum JobsList: RPCMethod {
    public static let name = "jobs.list"
    public static let maxLimit = 1000

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var queue: String?
        public var state: JobState?
        public var type: String?
        public var tag: String?
        public var limit: Int
        /// The `next_cursor` of the previous page.
        public var cursor: String?

        public static let fieldNames: Set<String> = ["queue", "state", "type", "tag", "limit", "cursor"]

        public init(queue: String? = nil, state: JobState? = nil, type: String? = nil, tag: String? = nil, limit: Int = 50, cursor: String? = nil) {
            self.queue = queue
            self.state = state
            self.type = type
            self.tag = tag
            self.limit = limit
            self.cursor = cursor
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            queue = try c.decodeIfPresent(String.self, forKey: .queue)
            state = try c.decodeIfPresent(JobState.self, forKey: .state)
            type = try c.decodeIfPresent(String.self, forKey: .type)
            tag = try c.decodeIfPresent(String.self, forKey: .tag)
            limit = try c.decodeInteger(Int.self, forKey: .limit) ?? 50
            cursor = try c.decodeIfPresent(String.self, forKey: .cursor)
        }

        public func validate() throws(RPCErrorObject) {
            if let queue { try Names.checkQueue(queue, field: "queue") }
            guard (1...JobsList.maxLimit).contains(limit) else {
                throw .invalidParams(field: "limit", "must be between 1 and \(JobsList.maxLimit), got \(limit)")
            }
            if let cursor, Int64(cursor) == nil { throw .invalidParams(field: "cursor", "must be a next_cursor from a previous page") }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var jobs: [Job]
        /// Pass as `cursor` for the next page; absent on the last page.
        public var nextCursor: String?

        public init(jobs: [Job], nextCursor: String?) {
            self.jobs = jobs
            self.nextCursor = nextCursor
        }

        enum CodingKeys: String, CodingKey {
            case jobs
            case nextCursor = "next_cursor"
        }
    }
}

/// `jobs.cancel`: a job still waiting (scheduled or available) will never run; it is kept as `cancelled`.
/// `{"jsonrpc":"2.0","id":11,"method":"jobs.cancel","params":{"id":"42"}}`
public enum JobsCancel: RPCMethod {
    public static let name = "jobs.cancel"
    public typealias Params = JobsGet.Params
    /// The job's id and its new state, `cancelled`.
    public typealias Result = Enqueue.Result
}

/// `jobs.discard`: deletes a waiting or finished job for good (not one a worker holds).
/// `{"jsonrpc":"2.0","id":12,"method":"jobs.discard","params":{"id":"42"}}`
public enum JobsDiscard: RPCMethod {
    public static let name = "jobs.discard"
    public typealias Params = JobsGet.Params

    public struct Result: Codable, Sendable, Hashable {
        public var id: String
        public var discarded: Bool

        public init(id: String, discarded: Bool = true) {
            self.id = id
            self.discarded = discarded
        }
    }
}
