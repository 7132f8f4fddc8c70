import GantryProtocol

/// The leases one session holds, as far as this broker knows. The database stays the authority (a lease
/// may have run out there); this is what lets `nack` decide retry or dead without reading the job first.
public struct SessionLeases: Sendable {
    public struct Lease: Equatable, Sendable {
        public var attempt: Int
        public var maxAttempts: Int

        public init(attempt: Int, maxAttempts: Int) {
            self.attempt = attempt
            self.maxAttempts = maxAttempts
        }
    }

    private var leases: [String: Lease] = [:]

    public init() {}

    public var count: Int { leases.count }

    public mutating func reserved(_ jobs: [ReservedJob]) {
        for job in jobs { leases[job.id] = Lease(attempt: job.attempt, maxAttempts: job.maxAttempts) }
    }

    public func lease(for id: String) -> Lease? { leases[id] }

    @discardableResult
    public mutating func finished(_ id: String) -> Lease? { leases.removeValue(forKey: id) }

    public mutating func removeAll() { leases.removeAll() }
}
