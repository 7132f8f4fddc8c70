import Foundation
@testable import GantryBroker
import GantryProtocol
import GantryTesting
import Logging
import PostgresNIO
import Testing

/// Each background chore's round against a real PostgreSQL, with the clock pinned: a round is run "now" and then
/// "later" (a `now` past the job's time), so nothing sleeps and nothing depends on timing.
@Suite(.deadline(.seconds(180))) struct ChoreTests {
    static let logger = Logger(label: "chore-test")

    /// A signed-in broker (its heartbeat written) on a fresh database.
    func withBroker(_ body: @Sendable @escaping (Broker) async throws -> Void) async throws {
        try await TestPostgres.withMigratedDatabase { client, url in
            let broker = Broker(configuration: BrokerConfiguration(), client: client, pipelines: PostgresPipelines(url: url, logger: Self.logger), logger: Self.logger)
            #expect(try await BrokerHeartbeat(broker: broker).runOnce() == 0, "no workers to publish yet")
            try await body(broker)
        }
    }

    func enqueue(_ broker: Broker, _ params: Enqueue.Params) async throws -> Int64 {
        try #require(Int64(try await broker.jobStore.insertJobs([params])[0].id))
    }

    func claim(_ broker: Broker, leaseMs: Int64) async throws -> ReservedJob {
        let claimed = try await broker.jobStore.claimJobs(queues: ["default"], max: 1, sessionID: UUID(), leaseMs: leaseMs, defaultLeaseMs: 60_000)
        return try #require(claimed.jobs.first)
    }

    @Test func theLeaseReaperPutsAJobBackOnceItsLeaseHasRunOut() async throws {
        try await withBroker { broker in
            let id = try await enqueue(broker, Enqueue.Params(type: "slow"))
            _ = try await claim(broker, leaseMs: 60_000)
            let reaper = LeaseReaper(broker: broker)
            #expect(try await reaper.runOnce(now: Date()) == [:], "the lease has a minute left")
            #expect(try await broker.jobStore.job(id: id)?.state == .reserved)
            let later = Date().addingTimeInterval(61)
            #expect(try await reaper.runOnce(now: later) == ["default": 1])
            let job = try #require(try await broker.jobStore.job(id: id))
            #expect(job.state == .available)
            #expect(job.errors.last?.reason == "lease_expired")
            let at = try #require(job.errors.last?.at)
            #expect(abs(at.timeIntervalSince(later)) < 0.002, "recorded at the reaper's now (to the millisecond)")
        }
    }

    @Test func theLeaseReaperPutsBackJobsOfABrokerThatStoppedHeartbeating() async throws {
        try await withBroker { broker in
            let id = try await enqueue(broker, Enqueue.Params(type: "orphan"))
            _ = try await claim(broker, leaseMs: 600_000)
            let reaper = LeaseReaper(broker: broker)
            #expect(try await reaper.runOnce(now: Date().addingTimeInterval(5)) == [:], "within the broker timeout (10 s)")
            #expect(try await reaper.runOnce(now: Date().addingTimeInterval(30)) == ["default": 1])
            #expect(try await broker.jobStore.job(id: id)?.errors.last?.reason == "broker_lost")
        }
    }

    @Test func theSchedulerMakesADelayedJobAvailableWhenItIsDue() async throws {
        try await withBroker { broker in
            let id = try await enqueue(broker, Enqueue.Params(type: "later", delayMs: 3_600_000))
            let scheduler = Scheduler(broker: broker)
            let early = try await scheduler.runOnce(now: Date())
            #expect(early.promoted == [:])
            #expect(try #require(early.nextDueIn) > .seconds(3500), "it knows when to look again")
            #expect(try await scheduler.runOnce(now: Date().addingTimeInterval(3601)) == Scheduler.Round(promoted: ["default": 1], nextDueIn: nil))
            #expect(try await broker.jobStore.job(id: id)?.state == .available)
        }
    }

    @Test func theExpirerEndsAJobThatWaitedPastItsQueueTimeout() async throws {
        try await withBroker { broker in
            let id = try await enqueue(broker, Enqueue.Params(type: "stale", queueTimeoutMs: 60_000))
            let expirer = Expirer(broker: broker)
            #expect(try await expirer.runOnce(now: Date()) == [:])
            #expect(try await expirer.runOnce(now: Date().addingTimeInterval(61)) == ["default": 1])
            #expect(try await broker.jobStore.job(id: id)?.state == .expired)
        }
    }

    @Test func theRetentionCleanerDeletesFinishedJobsPastTheirRetention() async throws {
        try await withBroker { broker in
            let done = try await enqueue(broker, Enqueue.Params(type: "done"))
            let session = UUID()
            let claimed = try await broker.jobStore.claimJobs(queues: ["default"], max: 1, sessionID: session, leaseMs: nil, defaultLeaseMs: 60_000)
            #expect(claimed.jobs.map(\.id) == [String(done)])
            _ = try await broker.jobStore.completeJobs([JobStore.Completion(id: done, sessionID: session, result: ["ok": true])])
            let cleaner = RetentionCleaner(broker: broker)
            #expect(try await cleaner.runOnce(now: Date()) == 0)
            #expect(try await cleaner.runOnce(now: Date().addingTimeInterval(23 * 3600)) == 0, "completed jobs are kept a day")
            #expect(try await broker.jobStore.job(id: done)?.result == ["ok": true])
            #expect(try await cleaner.runOnce(now: Date().addingTimeInterval(25 * 3600)) == 1)
            #expect(try await broker.jobStore.job(id: done) == nil)
        }
    }

    @Test func theRetentionCleanerDeletesOperationsAndEventsPastTheirRetention() async throws {
        try await withBroker { broker in
            let plan = try OperationPlan.parse(["main": ["only.step"]], defaultQueue: "default")
            let started = try await broker.operationStore.start(
                OperationsStart.Params(name: "short", branches: ["main": ["only.step"]]), plan: plan)
            let event = try await broker.eventStore.publish(EventsPublish.Params(type: "thing.happened"))
            let session = UUID()
            let step = try #require(try await broker.jobStore.claimJobs(queues: ["default"], max: 1, sessionID: session, leaseMs: nil, defaultLeaseMs: 60_000).jobs.first)
            #expect(step.operation?.id == started.id)
            _ = try await broker.jobStore.completeJobs([JobStore.Completion(id: Int64(step.id)!, sessionID: session, result: nil)])
            #expect(try await broker.operationStore.state(id: Int64(started.id)!) == .completed)
            let cleaner = RetentionCleaner(broker: broker)
            _ = try await cleaner.runOnce(now: Date().addingTimeInterval(23 * 3600))
            #expect(try await broker.operationStore.state(id: Int64(started.id)!) == .completed, "completed operations are kept a day")
            _ = try await cleaner.runOnce(now: Date().addingTimeInterval(25 * 3600))
            #expect(try await broker.operationStore.state(id: Int64(started.id)!) == nil)
            #expect(try await broker.eventStore.get(id: Int64(event.id)!) != nil, "events are kept as long as failed jobs (30 days)")
            _ = try await cleaner.runOnce(now: Date().addingTimeInterval(31 * 86400))
            #expect(try await broker.eventStore.get(id: Int64(event.id)!) == nil)
        }
    }

    /// Two brokers' package cron rounds over the same due tick start one execution: the second finds the tick
    /// moved on. The next tick is in the future, so a round right after fires nothing.
    @Test func aPackagesCronTickStartsOneExecutionAcrossBrokers() async throws {
        try await withBroker { broker in
            let params = PackagesUpsert.Params(name: "nightly", steps: ["report.fetch"], triggers: ["cron": "0 3 * * *"])
            let (steps, triggers) = try params.checked()
            let overdue = Date().addingTimeInterval(-60)
            _ = try await broker.packageStore.upsert(params, steps: steps, triggers: triggers, nextRunAt: overdue, source: "rpc")
            let other = Broker(configuration: BrokerConfiguration(), client: broker.packageStore.storage.client, pipelines: broker.packageStore.storage.pipelines, logger: Self.logger)
            async let first = PackageCron(broker: broker).runOnce()
            async let second = PackageCron(broker: other).runOnce()
            let rounds = try await [first, second]
            #expect(rounds.map(\.fired).reduce(0, +) == 1, "one execution for the tick, whichever broker won")
            let executions = try await broker.packageStore.executions(PackagesExecutions.Params(name: "nightly"))
            #expect(executions.executions.map(\.trigger) == [.cron])
            #expect(try await PackageCron(broker: broker).runOnce().fired == 0)
            let package = try #require(try await broker.packageStore.package(named: "nightly"))
            #expect(try #require(package.nextRunAt) > Date(), "the next tick is 03:00 to come")
        }
    }

    @Test func theWaiterPollLooksOnlyWhenSomeoneWaits() async throws {
        try await withBroker { broker in
            _ = try await enqueue(broker, Enqueue.Params(type: "x"))
            #expect(try await WaiterPoll(broker: broker).runOnce() == [:], "nobody waits, so nothing is read")
        }
    }
}
