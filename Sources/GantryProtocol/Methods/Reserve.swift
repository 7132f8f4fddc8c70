import Foundation

/// `reserve`: leases up to `max` jobs from the queues, in the order the queues are listed; waits up to
/// `wait_ms` for one to arrive (long poll). An empty `jobs` list means nothing came in time.
/// `{"jsonrpc":"2.0","id":3,"method":"reserve","params":{"queues":["critical","default"],"max":10,"wait_ms":30000}}`
public enum Reserve: RPCMethod {
    public static let name = "reserve"
    public static let maxWaitMs: Int64 = 300_000

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var queues: [String]
        public var max: Int
        public var waitMs: Int64
        public var leaseMs: Int64?

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        public init(queues: [String], max: Int = 1, waitMs: Int64 = 0, leaseMs: Int64? = nil) {
            self.queues = queues
            self.max = max
            self.waitMs = waitMs
            self.leaseMs = leaseMs
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case queues, max
            case waitMs = "wait_ms"
            case leaseMs = "lease_ms"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            queues = try c.decode([String].self, forKey: .queues)
            max = try c.decodeInteger(Int.self, forKey: .max) ?? 1
            waitMs = try c.decodeInteger(Int64.self, forKey: .waitMs) ?? 0
            leaseMs = try c.decodeInteger(Int64.self, forKey: .leaseMs)
        }

        public func validate() throws(RPCErrorObject) {
            guard !queues.isEmpty else { throw .invalidParams(field: "queues", "must name at least one queue") }
            for (index, queue) in queues.enumerated() { try Names.checkQueue(queue, field: "queues[\(index)]") }
            guard ProtocolDefaults.reserveMaxRange.contains(max) else {
                throw .invalidParams(field: "max", "must be between 1 and \(ProtocolDefaults.reserveMaxRange.upperBound), got \(max)")
            }
            guard (0...Reserve.maxWaitMs).contains(waitMs) else {
                throw .invalidParams(field: "wait_ms", "must be between 0 and \(Reserve.maxWaitMs) (5 minutes), got \(waitMs)")
            }
            if let leaseMs, leaseMs < 1000 { throw .invalidParams(field: "lease_ms", "must be at least 1000 (one second)") }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var jobs: [ReservedJob]
        public init(jobs: [ReservedJob]) { self.jobs = jobs }
    }
}
