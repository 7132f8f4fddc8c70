import GantryProtocol

/// The leases one session holds, as far as this broker knows. The database stays the authority (a lease
/// may have run out there); this is what lets `nack` decide retry or dead without reading the job first.
public struct SessionLeases: Sendable {
    public struct Lease: Equatable, Sendable {
        public var attempt: Int
        public var maxAttempts: Int
        public var queue: String
        public var type: String
        /// When this broker handed it out, for the job run time metric.
        public var reservedAt: ContinuousClock.Instant
        /// The name of the operation it is a step of, if it is one.
        public var operation: String?

        public init(attempt: Int, maxAttempts: Int, queue: String, type: String, reservedAt: ContinuousClock.Instant, operation: String? = nil) {
            self.attempt = attempt
            self.maxAttempts = maxAttempts
            self.queue = queue
            self.type = type
            self.reservedAt = reservedAt
            self.operation = operation
        }
    }

    private var leases: [String: Lease] = [:]

    public init() {}

    public var count: Int { leases.count }

    public mutating func reserved(_ jobs: [ReservedJob], at now: ContinuousClock.Instant = .now) {
        for job in jobs {
            leases[job.id] = Lease(attempt: job.attempt, maxAttempts: job.maxAttempts, queue: job.queue, type: job.type, reservedAt: now,
                                   operation: job.operation?.name)
        }
    }

    public func lease(for id: String) -> Lease? { leases[id] }

    @discardableResult
    public mutating func finished(_ id: String) -> Lease? { leases.removeValue(forKey: id) }

    public mutating func removeAll() { leases.removeAll() }
}
