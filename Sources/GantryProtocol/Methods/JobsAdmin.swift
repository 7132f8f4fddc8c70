import Foundation

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
        /// Jobs whose args contain this (JSON containment: `{"user_id": 7}`).
        public var args: JSONValue?
        public var enqueuedAfter: Date?
        public var enqueuedBefore: Date?
        public var limit: Int
        /// The `next_cursor` of the previous page.
        public var cursor: String?

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        enum CodingKeys: String, CodingKey, CaseIterable {
            case queue, state, type, tag, args, limit, cursor
            case enqueuedAfter = "enqueued_after"
            case enqueuedBefore = "enqueued_before"
        }

        public init(queue: String? = nil, state: JobState? = nil, type: String? = nil, tag: String? = nil, args: JSONValue? = nil,
                    enqueuedAfter: Date? = nil, enqueuedBefore: Date? = nil, limit: Int = 50, cursor: String? = nil) {
            self.queue = queue
            self.state = state
            self.type = type
            self.tag = tag
            self.args = args
            self.enqueuedAfter = enqueuedAfter
            self.enqueuedBefore = enqueuedBefore
            self.limit = limit
            self.cursor = cursor
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            queue = try c.decodeIfPresent(String.self, forKey: .queue)
            state = try c.decodeIfPresent(JobState.self, forKey: .state)
            type = try c.decodeIfPresent(String.self, forKey: .type)
            tag = try c.decodeIfPresent(String.self, forKey: .tag)
            args = try c.decodeIfPresent(JSONValue.self, forKey: .args)
            enqueuedAfter = try c.decodeIfPresent(Date.self, forKey: .enqueuedAfter)
            enqueuedBefore = try c.decodeIfPresent(Date.self, forKey: .enqueuedBefore)
            limit = try c.decodeInteger(Int.self, forKey: .limit) ?? 50
            cursor = try c.decodeIfPresent(String.self, forKey: .cursor)
        }

        public func validate() throws(RPCErrorObject) {
            if let queue { try Names.checkQueue(queue, field: "queue") }
            guard (1...JobsList.maxLimit).contains(limit) else {
                throw .invalidParams(field: "limit", "must be between 1 and \(JobsList.maxLimit), got \(limit)")
            }
            if let cursor, Int64(cursor) == nil { throw .invalidParams(field: "cursor", "must be a next_cursor from a previous page") }
            switch args {
            case nil, .object?, .array?: break
            case let other?:
                throw .invalidParams(field: "args", "must be an object or an array to look for inside jobs' args (like {\"user_id\": 7}), got \(other.typeName)")
            }
            if let (path, problem) = args?.unstorable("args") { throw .invalidParams(field: path, problem) }
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

/// `jobs.cancel`: a job still waiting (scheduled or available) will never run; it is kept as `cancelled`. A job
/// a worker holds is flagged instead (the answer's state is `reserved`): the worker hears it from `extend`
/// (`cancel_requested`), a nack or lost lease ends it `cancelled` with no retry, and an ack still completes it
/// (the ack's answer says `cancel_requested`).
/// `{"jsonrpc":"2.0","id":11,"method":"jobs.cancel","params":{"id":"42"}}`
public enum JobsCancel: RPCMethod {
    public static let name = "jobs.cancel"
    public typealias Params = JobsGet.Params
    /// The job's id and its state: `cancelled`, or `reserved` when its worker was told.
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
