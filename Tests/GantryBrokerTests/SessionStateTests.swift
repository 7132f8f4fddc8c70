import Foundation
@testable import GantryBroker
import GantryProtocol
import GantryTesting
import Testing

/// The session's rules without sockets: each event and what it tells the broker to do.
@Suite(.deadline(.seconds(60))) struct SessionStateTests {
    let worker = Hello.Params(worker: .init(id: "w-1", queues: ["q"], concurrency: 2, handlers: []))
    let producer = Hello.Params()

    func job(_ id: String) -> ReservedJob {
        ReservedJob(id: id, type: "t", args: [], queue: "q", priority: 1, attempt: 1, maxAttempts: 5,
                    enqueuedAt: Date(), leaseExpiresAt: Date(), meta: [:])
    }

    @Test func aClosingSessionEndsItsWaitsAndStartsNoNewOnes() {
        var state = SessionState()
        let answer1 = state.startWaiting(7)
        #expect(answer1)
        let answer2 = state.startWaiting(8)
        #expect(answer2)
        state.stopWaiting(8)
        let answer3 = state.beginClosing()
        #expect(answer3 == [7])
        let answer4 = state.startWaiting(9)
        #expect(!answer4, "a closing session does not park a reserve")
        #expect(state.waits.isEmpty)
    }

    @Test func helloChangesTheWorkerCountOnlyWhenTheRoleChanges() {
        var state = SessionState()
        let answer5 = state.greeted(producer)
        #expect(answer5 == .init(wasWorker: false, isWorker: false))
        let answer6 = state.greeted(worker)
        #expect(answer6 == .init(wasWorker: false, isWorker: true))
        let answer7 = state.greeted(worker)
        #expect(answer7 == .init(wasWorker: true, isWorker: true))
        #expect(state.workerID == "w-1")
        let answer8 = state.greeted(producer)
        #expect(answer8 == .init(wasWorker: true, isWorker: false))
    }

    @Test func theThirdFailedHelloInARowClosesTheConnectionAfterItsAnswer() {
        var state = SessionState()
        let answer9 = state.failedToAuthenticate()
        #expect(answer9 == 1)
        let answer10 = state.failedToAuthenticate()
        #expect(answer10 == 2)
        #expect(!state.mustCloseAfterAnswer)
        state.authenticated(AccessToken(name: "app", plain: "s3cret-token-value", role: .producer))
        #expect(state.failedHellos == 0, "a success starts the count again")
        #expect(state.access?.name == "app")
        for _ in 0..<SessionState.helloAttempts { _ = state.failedToAuthenticate() }
        #expect(state.access == nil)
        #expect(state.mustCloseAfterAnswer)
    }

    @Test func operatorsOrdersReachWorkersOnlyAndStopOutranksQuiet() {
        var state = SessionState()
        let answer11 = state.told(.quiet)
        #expect(!answer11, "a connection that is no worker is not told")
        _ = state.greeted(worker)
        let answer12 = state.told(.quiet)
        #expect(answer12)
        #expect(state.workerState == .quiet)
        #expect(state.isQuiet)
        let answer13 = state.told(.stop)
        #expect(answer13)
        let answer14 = state.told(.quiet)
        #expect(answer14)
        #expect(state.workerState == .stopping, "a quiet after a stop does not undo the stop")
        _ = state.beginClosing()
        let answer15 = state.told(.stop)
        #expect(!answer15, "a closing connection is not told")
    }

    @Test func anAckEndsItsLeaseOnce() {
        var state = SessionState()
        state.willReserve()
        state.reserved([job("1"), job("2")])
        let answer16 = state.finished("1")
        #expect(answer16?.queue == "q")
        let answer17 = state.finished("1")
        #expect(answer17 == nil)
        #expect(state.leases.count == 1)
    }

    @Test func closingPutsBackJobsOnlyWhenTheSessionReservedAndForgetsItsLeases() {
        var idle = SessionState()
        _ = idle.greeted(worker)
        let answer18 = idle.closed()
        #expect(answer18 == .init(wasWorker: true, putBackJobs: false))

        var busy = SessionState()
        busy.willReserve()
        busy.reserved([job("1")])
        let answer19 = busy.closed()
        #expect(answer19 == .init(wasWorker: false, putBackJobs: true))
        #expect(busy.leases.count == 0)
        #expect(busy.isClosing)
    }
}
