import Foundation
@testable import GantryBroker
import GantryProtocol
import GantryTesting
import Logging
import PostgresNIO
import Testing

/// The store against a real PostgreSQL (the suite's throwaway cluster), one fresh database per test.
@Suite(.deadline(.seconds(180))) struct JobStoreTests {
    static let logger = Logger(label: "store-test")

    /// A store for a broker that has signed in (so its leases are not taken for a dead broker's).
    func withStore(_ body: @Sendable @escaping (JobStore, PostgresClient) async throws -> Void) async throws {
        try await TestPostgres.withMigratedDatabase { client, url in
            let storage = Storage(client: client, pipelines: PostgresPipelines(url: url, logger: Self.logger))
            let brokerID = UUID()
            try await BrokerStore(storage: storage, logger: Self.logger).heartbeat(id: brokerID, host: "test", version: "test")
            try await body(JobStore(storage: storage, brokerID: brokerID, logger: Self.logger), client)
        }
    }

    func claim(_ store: JobStore, _ queues: [String], max: Int = 10, session: UUID = UUID(), leaseMs: Int64? = nil) async throws -> [ReservedJob] {
        try await store.claimJobs(queues: queues, max: max, sessionID: session, leaseMs: leaseMs, defaultLeaseMs: 60_000).jobs
    }

    @Test func migrationsAreIdempotent() async throws {
        try await TestPostgres.withMigratedDatabase { client, url in
            let migrator = Migrator(client: client, logger: Self.logger)
            let appliedAgain = try await migrator.migrate()
            let version = try await migrator.currentVersion()
            #expect(appliedAgain.isEmpty)
            #expect(version == Migration.all.last!.version)
        }
    }

    /// A run_at sent with microseconds is stored with exactly those (Rails' `set(wait_until:)` sends them).
    @Test func runAtKeepsTheMicrosecondSent() async throws {
        try await withStore { store, client in
            var stored: [String] = []
            for sent in ["2030-01-31T10:00:09.250000Z", "2030-01-31T10:00:09.250001Z", "2030-01-31T10:00:09.999999Z", "2030-01-31T10:00:09.123457Z"] {
                let params = try GantryJSON.makeDecoder().decode(Enqueue.Params.self, from: Data(#"{"type": "t", "run_at": "\#(sent)"}"#.utf8))
                let id = try #require(Int64(try await store.insertJobs([params])[0].id))
                let rows = try await client.query(
                    "SELECT to_char(run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM gantry.jobs WHERE id = \(id)", logger: Self.logger)
                for try await text in rows.decode(String.self) { stored.append(text) }
            }
            #expect(stored == ["2030-01-31T10:00:09.250000Z", "2030-01-31T10:00:09.250001Z", "2030-01-31T10:00:09.999999Z", "2030-01-31T10:00:09.123457Z"])
        }
    }

    @Test func orderIsPriorityThenRunAtThenEnqueueOrder() async throws {
        try await withStore { store, _ in
            let ids = try await store.insertJobs([
                Enqueue.Params(type: "low", priority: 100),
                Enqueue.Params(type: "urgent-1", priority: 1),
                Enqueue.Params(type: "normal"),
                Enqueue.Params(type: "urgent-2", priority: 1),
            ]).map(\.id)
            let claimed = try await claim(store, ["default"])
            #expect(claimed.map(\.type) == ["urgent-1", "urgent-2", "low", "normal"])
            #expect(Set(claimed.map(\.id)) == Set(ids))
        }
    }

    @Test func queuesAreTakenInTheOrderGiven() async throws {
        try await withStore { store, _ in
            _ = try await store.insertJobs([
                Enqueue.Params(type: "bulk", queue: "bulk", priority: 1),
                Enqueue.Params(type: "critical", queue: "critical", priority: 30000),
            ])
            #expect(try await claim(store, ["critical", "bulk"], max: 1).map(\.type) == ["critical"])
            #expect(try await claim(store, ["critical", "bulk"], max: 1).map(\.type) == ["bulk"])
            #expect(try await claim(store, ["critical", "bulk"], max: 1).isEmpty)
        }
    }

    @Test func delayedJobsAreNotHandedOutEarly() async throws {
        try await withStore { store, _ in
            let results = try await store.insertJobs([Enqueue.Params(type: "later", delayMs: 60_000)])
            #expect(results[0].state == .scheduled)
            #expect(try await claim(store, ["default"]).isEmpty)
            let early = try await store.promoteDueJobs(now: Date(), limit: 5000)
            #expect(early.available.isEmpty)
            #expect(try #require(early.nextDueInMs) > 50_000, "the scheduler knows when to look again")
            try await store.storage.client.query("UPDATE gantry.jobs SET run_at = now() - interval '1 millisecond'")
            #expect(try await store.promoteDueJobs(now: Date(), limit: 5000).available == ["default": 1])
            #expect(try await claim(store, ["default"]).map(\.type) == ["later"])
        }
    }

    @Test func aBatchIsAllOrNothing() async throws {
        try await withStore { store, _ in
            // The database refuses priority 0 (the protocol layer does too): the whole batch must fail.
            var failed = false
            do {
                _ = try await store.insertJobs([Enqueue.Params(type: "ok"), Enqueue.Params(type: "bad", priority: 0)])
            } catch {
                failed = true
            }
            let claimed = try await claim(store, ["default"])
            let stats = try await store.queueStats()
            #expect(failed)
            #expect(claimed.isEmpty)
            #expect(stats["default"] == nil)
        }
    }

    @Test func concurrentClaimsNeverShareAJob() async throws {
        try await withStore { store, _ in
            _ = try await store.insertJobs((0..<300).map { Enqueue.Params(type: "job-\($0)") })
            let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<12 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let jobs = try await claim(store, ["default"], max: 7)
                            if jobs.isEmpty { return mine }
                            mine += jobs.map(\.id)
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(claimed.count == 300)
            #expect(Set(claimed).count == 300)
        }
    }

    @Test func completingMovesTheJobToHistoryWithItsResult() async throws {
        try await withStore { store, _ in
            let session = UUID()
            let id = Int64(try await store.insertJobs([Enqueue.Params(type: "t", args: ["x": 1])])[0].id)!
            _ = try await claim(store, ["default"], session: session)
            let stranger = try await store.completeJobs([.init(id: id, sessionID: UUID(), result: nil)])
            #expect(stranger == [JobStore.Completed(held: false, cancelRequested: false)])
            let holder = try await store.completeJobs([.init(id: id, sessionID: session, result: ["sent": true])])
            #expect(holder == [JobStore.Completed(held: true, cancelRequested: false)])
            let job = try #require(try await store.job(id: id))
            #expect(job.state == .completed)
            #expect(job.result == ["sent": true])
            #expect(job.finishedAt != nil)
            let stats = try #require(try await store.queueStats()["default"])
            #expect(stats.counts["completed"] == 1)
            #expect(stats.counts["reserved"] == 0)
            #expect(stats.processed == 1)
            #expect(stats.failed == 0)
        }
    }

    @Test func failingRecordsTheErrorAndRetriesOrBuries() async throws {
        try await withStore { store, _ in
            let session = UUID()
            let id = Int64(try await store.insertJobs([Enqueue.Params(type: "t", maxAttempts: 2)])[0].id)!
            _ = try await claim(store, ["default"], session: session)
            let recorded = try await store.failJob(
                id: id, sessionID: session, failure: .nacked(Nack.Failure(message: "boom"), workerID: nil),
                outcome: .retry(afterMs: 60_000))
            guard case .retry(let queue, let nextRunAt)? = recorded else { Issue.record("not retried: \(String(describing: recorded))"); return }
            #expect(queue == "default")
            #expect(nextRunAt > Date().addingTimeInterval(50))
            var job = try #require(try await store.job(id: id))
            #expect(job.state == .scheduled)
            #expect(job.errors.map(\.message) == ["boom"])
            #expect(job.errors.first?.attempt == 1)

            try await store.storage.client.query("UPDATE gantry.jobs SET run_at = now() WHERE id = \(id)")
            _ = try await store.promoteDueJobs(now: Date(), limit: 5000)
            #expect(try await claim(store, ["default"], session: session).first?.attempt == 2)
            #expect(try await store.failJob(
                id: id, sessionID: session, failure: .nacked(Nack.Failure(message: "again"), workerID: nil),
                outcome: .dead) == .finished(.dead))
            job = try #require(try await store.job(id: id))
            #expect(job.state == .dead)
            #expect(job.errors.map(\.message) == ["boom", "again"])
            let stats = try #require(try await store.queueStats()["default"])
            #expect(stats.failed == 2)
            #expect(stats.counts["dead"] == 1)
        }
    }

    @Test func jobsPastTheirQueueTimeoutExpireAndAreNeverHandedOut() async throws {
        try await withStore { store, client in
            let ids = try await store.insertJobs([
                Enqueue.Params(type: "stale", queueTimeoutMs: 60_000),
                Enqueue.Params(type: "fresh", queueTimeoutMs: 60_000),
            ]).map { Int64($0.id)! }
            try await client.query("UPDATE gantry.jobs SET expires_at = now() - interval '1 second' WHERE id = \(ids[0])")
            let claimed = try await claim(store, ["default"])
            #expect(claimed.map(\.type) == ["fresh"])
            let expired = try await store.expireStaleJobs(now: Date(), limit: 1000)
            #expect(expired == ["default": 1])
            let job = try #require(try await store.job(id: ids[0]))
            #expect(job.state == .expired)
            let stats = try #require(try await store.queueStats()["default"])
            #expect(stats.counts["expired"] == 1)
            #expect(stats.counts["available"] == 0)
        }
    }

    @Test func theSafetyPollCountsAvailableJobsPerQueue() async throws {
        try await withStore { store, _ in
            _ = try await store.insertJobs((0..<3).map { _ in Enqueue.Params(type: "a", queue: "a") } + [Enqueue.Params(type: "b", queue: "b", delayMs: 60_000)])
            #expect(try await store.availableCounts(queues: ["a", "b", "c"]) == ["a": 3])
            #expect(try await store.availableCounts(queues: ["a"], cap: 2) == ["a": 2])
        }
    }

    @Test func aClosedSessionsJobsGoBackWithTheReason() async throws {
        try await withStore { store, _ in
            let session = UUID()
            _ = try await store.insertJobs([Enqueue.Params(type: "a"), Enqueue.Params(type: "b", maxAttempts: 1)])
            let claimed = try await claim(store, ["default"], session: session)
            #expect(claimed.count == 2)
            let released = try await store.releaseSessionJobs(sessionID: session, workerID: "w-1")
            #expect(released == ["default": 1])
            let a = try #require(try await store.job(id: Int64(claimed.first { $0.type == "a" }!.id)!))
            #expect(a.state == .available)
            #expect(a.attempt == 1)
            #expect(a.errors.map(\.reason) == ["connection_closed"])
            #expect(a.errors.first?.worker == "w-1")
            let b = try #require(try await store.job(id: Int64(claimed.first { $0.type == "b" }!.id)!))
            #expect(b.state == .dead)
        }
    }

    @Test func expiredLeasesAreReaped() async throws {
        try await withStore { store, client in
            _ = try await store.insertJobs([Enqueue.Params(type: "slow")])
            let claimed = try await claim(store, ["default"], leaseMs: 60_000)
            let early = try await store.reapLostLeases(brokerTimeoutMs: 60_000, now: Date(), limit: 1000)
            #expect(early == [:], "a lease that has not run out is left alone")
            try await client.query("UPDATE gantry.jobs SET lease_expires_at = now() - interval '1 second'")
            let reaped = try await store.reapLostLeases(brokerTimeoutMs: 60_000, now: Date(), limit: 1000)
            #expect(reaped == ["default": 1])
            let job = try #require(try await store.job(id: Int64(claimed[0].id)!))
            #expect(job.state == .available)
            #expect(job.errors.map(\.reason) == ["lease_expired"])
        }
    }

    @Test func leasesHeldThroughADeadBrokerAreReaped() async throws {
        try await withStore { store, client in
            _ = try await store.insertJobs([Enqueue.Params(type: "orphan")])
            let claimed = try await claim(store, ["default"], leaseMs: 600_000)
            #expect(try await store.reapLostLeases(brokerTimeoutMs: 10_000, now: Date(), limit: 1000) == [:])
            try await client.query("UPDATE gantry.brokers SET heartbeat_at = now() - interval '11 seconds'")
            #expect(try await store.reapLostLeases(brokerTimeoutMs: 10_000, now: Date(), limit: 1000) == ["default": 1])
            let job = try #require(try await store.job(id: Int64(claimed[0].id)!))
            #expect(job.state == .available)
            #expect(job.errors.map(\.reason) == ["broker_lost"])
        }
    }

    @Test func onlyOneBrokerReapsAtATime() async throws {
        try await withStore { store, client in
            let held = try await client.withTransaction(logger: Self.logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(JobStore.reaperLockKey))", logger: Self.logger)
                return try await store.reapLostLeases(brokerTimeoutMs: 10_000, now: Date(), limit: 1000)
            }
            #expect(held == nil, "another broker holds the reaper lock")
            #expect(try await store.reapLostLeases(brokerTimeoutMs: 10_000, now: Date(), limit: 1000) == [:])
        }
    }

    @Test func extendOnlyTouchesHeldLeases() async throws {
        try await withStore { store, _ in
            let session = UUID()
            _ = try await store.insertJobs([Enqueue.Params(type: "a"), Enqueue.Params(type: "b")])
            let mine = try await claim(store, ["default"], max: 1, session: session)
            let theirs = try await claim(store, ["default"], max: 1)
            let leases = try await store.extendLeases(
                ids: [Int64(mine[0].id)!, Int64(theirs[0].id)!], sessionID: session, leaseMs: 600_000, defaultLeaseMs: 1000)
            #expect(leases.map(\.id) == [mine[0].id])
            #expect(leases[0].leaseExpiresAt > Date().addingTimeInterval(500))
        }
    }

    @Test func valuesFullOfQuotesRoundTripUnchanged() async throws {
        try await withStore { store, _ in
            let nasty = #"'; DROP TABLE gantry.jobs; -- \"quoted\" \\ back"#
            let id = try await store.insertJobs([Enqueue.Params(type: nasty, args: [.string(nasty)], tags: [nasty], meta: ["k": .string(nasty)])])[0].id
            let job = try #require(try await store.job(id: Int64(id)!))
            #expect(job.type == nasty)
            #expect(job.args == [.string(nasty)])
            #expect(job.tags == [nasty])
        }
    }

    @Test func theClaimUsesTheIndexNotAScan() async throws {
        try await withStore { store, client in
            _ = try await store.insertJobs((0..<2000).map { Enqueue.Params(type: "j", queue: $0 % 2 == 0 ? "a" : "b") })
            try await client.query("ANALYZE gantry.jobs")
            let rows = try await client.query("""
                EXPLAIN SELECT id FROM gantry.jobs WHERE queue = 'a' AND state = 'available'
                ORDER BY priority, run_at, id LIMIT 10 FOR UPDATE SKIP LOCKED
                """)
            var plan = ""
            for try await line in rows.decode(String.self) { plan += line + "\n" }
            #expect(plan.contains("jobs_claim"), "plan: \(plan)")
            #expect(!plan.contains("Seq Scan"), "plan: \(plan)")
        }
    }
}

/// Operator controls in the store: pausing queues and pruning the history.
@Suite(.deadline(.seconds(180))) struct OperatorStoreTests {
    static let logger = Logger(label: "store-test")

    @Test func aPausedQueueHandsOutNothingUntilResumed() async throws {
        try await TestPostgres.withMigratedDatabase { client, url in
            let storage = Storage(client: client, pipelines: PostgresPipelines(url: url, logger: Self.logger))
            let brokerID = UUID()
            try await BrokerStore(storage: storage, logger: Self.logger).heartbeat(id: brokerID, host: "test", version: "test")
            let store = JobStore(storage: storage, brokerID: brokerID, logger: Self.logger)
            let queues = QueueStore(storage: storage, logger: Self.logger)
            _ = try await store.insertJobs([Enqueue.Params(type: "a", queue: "mail"), Enqueue.Params(type: "b", queue: "bulk")])
            try await queues.pause("mail")
            let whilePaused = try await store.claimJobs(queues: ["mail", "bulk"], max: 10, sessionID: UUID(), leaseMs: nil, defaultLeaseMs: 60_000).jobs
            #expect(whilePaused.map(\.queue) == ["bulk"], "the paused queue is skipped, the others are not")
            #expect(try await queues.paused().keys.sorted() == ["mail"])
            try await queues.resume("mail")
            let resumed = try await store.claimJobs(queues: ["mail"], max: 10, sessionID: UUID(), leaseMs: nil, defaultLeaseMs: 60_000).jobs
            #expect(resumed.map(\.queue) == ["mail"])
        }
    }

    @Test func finishedJobsPastTheirRetentionArePrunedInBatches() async throws {
        try await TestPostgres.withMigratedDatabase { client, url in
            let storage = Storage(client: client, pipelines: PostgresPipelines(url: url, logger: Self.logger))
            let store = JobStore(storage: storage, brokerID: UUID(), logger: Self.logger)
            let ids = try await store.insertJobs((0..<5).map { Enqueue.Params(type: "t\($0)") }).map { Int64($0.id)! }
            // Finish them by hand: three completed long ago, one completed just now, one dead long ago.
            try await client.query("""
                WITH gone AS (DELETE FROM gantry.jobs RETURNING *)
                INSERT INTO gantry.finished_jobs (id, queue, type, args, state, priority, run_at, attempt, max_attempts,
                                                  tags, meta, errors, enqueued_at, finished_at)
                SELECT id, queue, type, args, CASE WHEN id = \(ids[4]) THEN 'dead' ELSE 'completed' END, priority, run_at, 1,
                       max_attempts, tags, meta, errors, enqueued_at,
                       CASE WHEN id = \(ids[3]) THEN now() ELSE now() - interval '2 days' END
                FROM gone
                """)
            let day: Int64 = 24 * 3600 * 1000
            #expect(try await store.pruneFinishedJobs(states: [.completed], olderThanMs: day, batch: 2) == 2)
            #expect(try await store.pruneFinishedJobs(states: [.completed], olderThanMs: day, batch: 2) == 1)
            #expect(try await store.pruneFinishedJobs(states: [.completed], olderThanMs: day, batch: 2) == 0)
            #expect(try await store.pruneFinishedJobs(states: [.dead], olderThanMs: 30 * day) == 0, "dead jobs are kept longer")
            #expect(try await store.job(id: ids[3])?.state == .completed, "a recent job stays")
            #expect(try await store.job(id: ids[4])?.state == .dead)
            let stats = try #require(try await store.queueStats()["default"])
            #expect(stats.counts["completed"] == 1, "the counters follow the deletions")
        }
    }
}
