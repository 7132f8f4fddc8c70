import Foundation
import GantryProtocol
import GantryTesting
import Testing

/// `queues.configure`: concurrency and rate limits hold across every worker and broker.
@Suite(.deadline(.seconds(300))) struct QueueLimitsTests {
    /// When each job ran, by the database's clock.
    static func runIntervals(_ ids: [String], on client: LineClient) async throws -> [(start: Date, end: Date)] {
        var intervals: [(start: Date, end: Date)] = []
        for id in ids {
            let job = try await client.result("jobs.get", ["id": .string(id)])
            let start = try #require(job["reserved_at"]?.stringValue.flatMap(GantryJSON.parseTimestamp))
            let end = try #require(job["finished_at"]?.stringValue.flatMap(GantryJSON.parseTimestamp))
            intervals.append((start, end))
        }
        return intervals
    }

    /// The most intervals open at one moment (an interval ending when another starts does not overlap it; starts
    /// are moved 3 ms later to allow for timestamps' millisecond rounding).
    static func mostAtOnce(_ intervals: [(start: Date, end: Date)]) -> Int {
        var events: [(at: Date, change: Int)] = []
        for interval in intervals {
            events.append((interval.start.addingTimeInterval(0.003), 1))
            events.append((interval.end, -1))
        }
        events.sort { first, second in first.at != second.at ? first.at < second.at : first.change < second.change }
        var open = 0
        var most = 0
        for (_, change) in events {
            open += change
            most = max(most, open)
        }
        return most
    }

    @Test func aConcurrencyLimitHoldsUnderLoadAcrossTwoBrokers() async throws {
        let (first, url) = try await startBroker()
        let second = try await BrokerProcess(databaseURL: url)
        let admin = try await first.connect()
        #expect(try await admin.result("queues.configure", ["queue": "render", "concurrency": 3]) == ["queue": "render", "concurrency": 3])
        let batch = try await admin.result("enqueue_batch", ["jobs": .array(Array(repeating: ["type": "render.page", "queue": "render"], count: 60))])
        let ids = (batch["ids"]?.arrayValue ?? []).compactMap(\.stringValue)
        #expect(ids.count == 60)

        let done = Collected<String>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                let broker = worker.isMultiple(of: 2) ? first : second
                group.addTask {
                    let client = try await broker.connect()
                    while done.all.count < 60 {
                        for job in try await reserve(client, ["render"], max: 5, waitMs: 500) {
                            try await Task.sleep(for: .milliseconds(15))
                            let id = try #require(job["id"])
                            _ = try await client.result("ack", ["id": id])
                            done.append(id.stringValue ?? "")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let most = Self.mostAtOnce(try await Self.runIntervals(ids, on: admin))
        #expect(most <= 3, "at most 3 render jobs ran at once")
        #expect(most == 3, "eight workers kept all 3 slots busy")
        #expect(try await admin.result("stats")["queues"]?["render"]?["counts"]?["completed"] == 60)
    }

    @Test func aRateLimitSpacesStartsAndWakesWaitersWhenItsWindowFrees() async throws {
        let (first, url) = try await startBroker()
        let second = try await BrokerProcess(databaseURL: url)
        let admin = try await first.connect()
        _ = try await admin.result("queues.configure", ["queue": "sms", "rate_limit": ["limit": 4, "period_ms": 1000]])
        let batch = try await admin.result("enqueue_batch", ["jobs": .array(Array(repeating: ["type": "sms.send", "queue": "sms"], count: 10))])
        let ids = (batch["ids"]?.arrayValue ?? []).compactMap(\.stringValue)
        let started = ContinuousClock.now
        let done = Collected<String>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for broker in [first, second, first] {
                group.addTask {
                    let client = try await broker.connect()
                    while done.all.count < 10 {
                        for job in try await reserve(client, ["sms"], max: 10, waitMs: 3000) {
                            let id = try #require(job["id"])
                            _ = try await client.result("ack", ["id": id])
                            done.append(id.stringValue ?? "")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        let starts = try await Self.runIntervals(ids, on: admin).map(\.start).sorted()
        for index in starts.indices.dropLast(4) {
            let gap = starts[index + 4].timeIntervalSince(starts[index])
            #expect(gap >= 0.997, "start \(index + 4) came \(gap) s after start \(index): 5 starts within one period")
        }
        #expect(elapsed >= .seconds(2), "10 jobs at 4 per second need two full windows")
        #expect(elapsed < .seconds(8), "waiters woke when the window freed (took \(elapsed))")
    }

    @Test func limitsAreCheckedShownInStatsAndRemovable() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        for (params, field) in [
            (["queue": "mail", "concurrency": 0] as JSONValue, "concurrency"),
            (["queue": "mail", "rate_limit": ["limit": 10]], "rate_limit.period_ms"),
            (["queue": "mail", "rate_limit": ["limit": 10, "period_ms": 1000, "burst": 5]], "rate_limit.burst"),
            (["queue": "mail", "rate_limit": ["limit": 0, "period_ms": 1000]], "rate_limit.limit"),
            (["queue": "no spaces", "concurrency": 1], "queue"),
        ] {
            let refused = try await client.call("queues.configure", params)
            #expect(refused.errorCode == -32602, "\(params)")
            #expect(refused.error?.data?["field"] == .string(field), "\(params): \(refused.error?.message ?? "")")
        }
        _ = try await client.result("queues.configure", ["queue": "mail", "concurrency": 5, "rate_limit": ["limit": 100, "period_ms": 60000]])
        let listed = try await client.result("queues.list")["queues"]?["mail"]
        #expect(listed?["concurrency"] == 5)
        #expect(listed?["rate_limit"] == ["limit": 100, "period_ms": 60000])
        #expect(try await client.result("stats")["queues"]?["mail"]?["concurrency"] == 5)

        // Each call states the whole configuration: what it leaves out is removed.
        #expect(try await client.result("queues.configure", ["queue": "mail", "concurrency": .null]) == ["queue": "mail"])
        let cleared = try await client.result("queues.list")["queues"]?["mail"]
        #expect(cleared?["concurrency"] == nil)
        #expect(cleared?["rate_limit"] == nil)

        // A limit of 1 makes the queue serial; reserve gets one job however many it asks for.
        _ = try await client.result("queues.configure", ["queue": "serial", "concurrency": 1])
        _ = try await client.result("enqueue_batch", ["jobs": [["type": "a", "queue": "serial"], ["type": "b", "queue": "serial"]]])
        let firstJob = try await reserve(client, ["serial"], max: 10)
        #expect(firstJob.count == 1)
        let other = try await broker.connect()
        #expect(try await reserve(other, ["serial"], max: 10).isEmpty)
        _ = try await client.result("ack", ["id": try #require(firstJob.first?["id"])])
        #expect(try await reserve(other, ["serial"], max: 10, waitMs: 2000).count == 1)
    }
}
