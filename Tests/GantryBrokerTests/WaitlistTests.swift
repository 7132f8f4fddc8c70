@testable import GantryBroker
import GantryTesting
import Testing

@Suite(.deadline(.seconds(60))) struct WaitlistTests {
    @Test func oneJobWakesOneWaiterFirstComeFirstServed() {
        var list = Waitlist()
        let first = list.register(queues: ["mail"])
        let second = list.register(queues: ["mail"])
        #expect(list.park(first) == .suspend)
        #expect(list.park(second) == .suspend)
        #expect(list.jobsAvailable(queue: "mail", count: 1) == [first])
        #expect(list.isParked(second))
        #expect(list.jobsAvailable(queue: "mail", count: 5) == [second])
    }

    @Test func otherQueuesWakeNobody() {
        var list = Waitlist()
        let ticket = list.register(queues: ["mail"])
        #expect(list.park(ticket) == .suspend)
        #expect(list.jobsAvailable(queue: "billing", count: 3).isEmpty)
        #expect(list.isParked(ticket))
    }

    @Test func aJobThatArrivesWhileTheWaiterClaimsIsNotMissed() {
        var list = Waitlist()
        let ticket = list.register(queues: ["a", "b"])
        // Not parked yet (its claim is in flight): the wake is remembered.
        #expect(list.jobsAvailable(queue: "b", count: 1).isEmpty)
        #expect(list.park(ticket) == .resumeNow)
    }

    @Test func aWaiterOnTwoQueuesIsWokenOnce() {
        var list = Waitlist()
        let ticket = list.register(queues: ["a", "b"])
        let other = list.register(queues: ["b"])
        _ = list.park(ticket)
        _ = list.park(other)
        #expect(list.jobsAvailable(queue: "a", count: 1) == [ticket])
        // The already-woken waiter does not absorb the next wake.
        #expect(list.jobsAvailable(queue: "b", count: 1) == [other])
    }

    @Test func removedWaitersAreForgotten() {
        var list = Waitlist()
        let ticket = list.register(queues: ["a"])
        _ = list.park(ticket)
        list.remove(ticket)
        #expect(list.count == 0)
        #expect(list.waitedQueues.isEmpty)
        #expect(list.jobsAvailable(queue: "a", count: 1).isEmpty)
        #expect(list.park(ticket) == .resumeNow)
    }

    @Test func wakeAllResumesEveryParkedWaiter() {
        var list = Waitlist()
        let a = list.register(queues: ["a"])
        let b = list.register(queues: ["b"])
        let c = list.register(queues: ["c"])
        _ = list.park(a)
        _ = list.park(b)
        #expect(list.wakeAll() == [a, b])
        #expect(list.park(c) == .resumeNow)
    }
}
