import Foundation
@testable import GantryBroker
import GantryProtocol
import GantryTesting
import Testing

@Suite(.deadline(.seconds(60))) struct SessionLeasesTests {
    func job(_ id: String, attempt: Int) -> ReservedJob {
        ReservedJob(id: id, type: "t", args: [], queue: "q", priority: 1, attempt: attempt, maxAttempts: 5,
                    enqueuedAt: Date(), leaseExpiresAt: Date(), meta: [:])
    }

    @Test func leasesAreRememberedUntilFinished() {
        var leases = SessionLeases()
        let now = ContinuousClock.now
        leases.reserved([job("1", attempt: 2), job("2", attempt: 1)], at: now)
        #expect(leases.lease(for: "1") == .init(attempt: 2, maxAttempts: 5, queue: "q", type: "t", reservedAt: now))
        #expect(leases.finished("1") != nil)
        #expect(leases.lease(for: "1") == nil)
        #expect(leases.count == 1)
    }
}
