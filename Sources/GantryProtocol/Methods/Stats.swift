import Foundation

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
        /// The same over the last minute and the last hour (estimated from per-minute counts: the oldest
        /// minute counts for the part of it inside the window).
        public var processedLastMinute: Int64 = 0
        public var failedLastMinute: Int64 = 0
        public var processedLastHour: Int64 = 0
        public var failedLastHour: Int64 = 0
        /// Whether an operator paused the queue (it hands out nothing meanwhile), and since when.
        public var paused: Bool
        public var pausedAt: Date?
        /// The queue's limits (`queues.configure`), absent when it has none.
        public var concurrency: Int?
        public var rateLimit: RateLimit?

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
            case concurrency
            case rateLimit = "rate_limit"
            case processedLastMinute = "processed_last_minute"
            case failedLastMinute = "failed_last_minute"
            case processedLastHour = "processed_last_hour"
            case failedLastHour = "failed_last_hour"
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
