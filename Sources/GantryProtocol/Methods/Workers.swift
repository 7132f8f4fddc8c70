import Foundation

/// `workers.list`: every worker connected to any broker on this database, as its broker last saw it.
/// `{"jsonrpc":"2.0","id":1,"method":"workers.list"}`
public enum WorkersList: RPCMethod {
    public static let name = "workers.list"
    public typealias Params = NoParams

    public struct Result: Codable, Sendable, Hashable {
        public var workers: [WorkerInfo]
        public init(workers: [WorkerInfo]) { self.workers = workers }
    }
}

/// One connected worker session.
public struct WorkerInfo: Codable, Sendable, Hashable {
    /// What a worker can be told, and what it was told last.
    public enum State: String, Codable, Sendable, CaseIterable {
        /// Reserving and running jobs.
        case running
        /// Told to finish what it holds and take nothing new.
        case quiet
        /// Told to hand back what it holds and exit; the broker closes its connection if it does not.
        case stopping
    }

    /// The id the worker announced in `hello`.
    public var id: String
    public var sessionID: String
    /// The broker holding its connection.
    public var brokerID: String
    /// The worker's address as the broker sees it (`ip:port`).
    public var peer: String
    public var client: String?
    public var queues: [String]
    public var concurrency: Int
    /// The job types it announced handlers for.
    public var handlers: [String]
    public var jobsHeld: Int
    public var state: State
    public var connectedAt: Date
    /// Its last request (as of its broker's last heartbeat, for workers on other brokers).
    public var lastSeenAt: Date

    public init(id: String, sessionID: String, brokerID: String, peer: String, client: String?, queues: [String],
                concurrency: Int, handlers: [String], jobsHeld: Int, state: State, connectedAt: Date, lastSeenAt: Date) {
        self.id = id
        self.sessionID = sessionID
        self.brokerID = brokerID
        self.peer = peer
        self.client = client
        self.queues = queues
        self.concurrency = concurrency
        self.handlers = handlers
        self.jobsHeld = jobsHeld
        self.state = state
        self.connectedAt = connectedAt
        self.lastSeenAt = lastSeenAt
    }

    enum CodingKeys: String, CodingKey {
        case id, peer, client, queues, concurrency, handlers, state
        case sessionID = "session_id"
        case brokerID = "broker_id"
        case jobsHeld = "jobs_held"
        case connectedAt = "connected_at"
        case lastSeenAt = "last_seen_at"
    }
}

/// `workers.quiet`: the chosen workers finish what they hold and take nothing new (before a deploy). They
/// hear it as the notification `worker.quiet`; a quiet worker's `reserve` waits out `wait_ms` and returns
/// no jobs. `{"jsonrpc":"2.0","id":1,"method":"workers.quiet","params":{"all":true}}`
public enum WorkersQuiet: RPCMethod {
    public static let name = "workers.quiet"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        /// A worker id (from `hello`) or a session id.
        public var id: String?
        /// Every worker on every broker.
        public var all: Bool

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, all
        }

        public init(id: String? = nil, all: Bool = false) {
            self.id = id
            self.all = all
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try container.decodeIfPresent(String.self, forKey: .id)
            all = try container.decodeIfPresent(Bool.self, forKey: .all) ?? false
        }

        public func validate() throws(RPCErrorObject) {
            guard (id != nil) != all else { throw .invalidParams(field: "id", "is needed (a worker's id from hello, or its session id), or else all: true; not both") }
        }

        /// Whether a worker is one of those chosen.
        public func matches(workerID: String, sessionID: String) -> Bool {
            all || id == workerID || id == sessionID
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        /// How many connected workers were told.
        public var workers: Int
        public init(workers: Int) { self.workers = workers }
    }
}

/// `workers.stop`: the chosen workers hand back what they hold and exit. They hear it as the notification
/// `worker.stop`; a worker still connected when the broker's drain grace (`--drain-grace-ms`) has passed is disconnected by its broker, and its jobs
/// go back to their queues.
public enum WorkersStop: RPCMethod {
    public static let name = "workers.stop"
    public typealias Params = WorkersQuiet.Params
    public typealias Result = WorkersQuiet.Result
}

/// Notifications the broker sends to a worker's connection (JSON-RPC requests without an id; no answer).
public enum WorkerNotification: String, Sendable, CaseIterable {
    /// Finish the jobs you hold, reserve nothing more.
    case quiet = "worker.quiet"
    /// Hand back the jobs you hold (nack them for a retry) and exit.
    case stop = "worker.stop"
}
