import Foundation
import GantryProtocol
import GantryTesting
import Testing

/// `unique_key`: while a job with the key waits or runs, enqueueing another returns that job, on any broker.
@Suite(.deadline(.seconds(300))) struct UniqueJobsTests {
    @Test func manyProducersOnTwoBrokersCreateOneJob() async throws {
        let (first, url) = try await startBroker()
        let second = try await BrokerProcess(databaseURL: url)
        let results = Collected<JSONValue>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for producer in 0..<8 {
                let broker = producer.isMultiple(of: 2) ? first : second
                group.addTask {
                    let client = try await broker.connect()
                    for _ in 0..<5 {
                        results.append(try await client.result("enqueue", ["type": "report.build", "queue": "reports", "unique_key": "report:42"]))
                    }
                }
            }
            try await group.waitForAll()
        }
        let all = results.all
        #expect(all.count == 40)
        #expect(Set(all.compactMap { $0["id"]?.stringValue }).count == 1, "one job for the key: \(Set(all.compactMap { $0["id"]?.stringValue }))")
        #expect(all.filter { $0["duplicate"] == nil }.count == 1, "exactly one enqueue created it")
        #expect(all.filter { $0["duplicate"] == true }.count == 39)
        let client = try await first.connect()
        #expect(try await client.result("stats")["queues"]?["reports"]?["counts"]?["available"] == 1)

        // Running still holds the key; once it is done, the key is free.
        let id = try #require(all.first?["id"])
        #expect(try await reserve(client, ["reports"]).first?["id"] == id)
        #expect(try await client.result("enqueue", ["type": "report.build", "queue": "reports", "unique_key": "report:42"])["duplicate"] == true)
        _ = try await client.result("ack", ["id": id])
        let again = try await client.result("enqueue", ["type": "report.build", "queue": "reports", "unique_key": "report:42"])
        #expect(again["duplicate"] == nil)
        #expect(again["id"] != id)
    }

    @Test func batchesAndRetriesRespectTheKey() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        let holder = try await enqueue(client, ["type": "sync", "unique_key": "account:7"])
        let batch = try await client.result("enqueue_batch", ["jobs": [
            ["type": "sync", "unique_key": "account:9"], ["type": "sync", "unique_key": "account:9"],
            ["type": "sync"], ["type": "sync", "unique_key": "account:7"],
        ]])
        let ids = batch["ids"]?.arrayValue ?? []
        #expect(ids.count == 4)
        #expect(ids[0] == ids[1], "the second of a key within a batch is the first's duplicate")
        #expect(ids[3] == .string(holder))
        #expect(batch["duplicates"] == [1, 3])
        #expect(try await client.result("stats")["queues"]?["default"]?["counts"]?["available"] == 3)

        // A dead job comes back only once no live job holds its key.
        let dead = try await enqueue(client, ["type": "once", "queue": "once", "unique_key": "nightly"])
        _ = try await reserve(client, ["once"])
        _ = try await client.result("nack", ["id": .string(dead), "error": ["message": "no"], "retry": false])
        let successor = try await enqueue(client, ["type": "once", "queue": "once", "unique_key": "nightly"])
        #expect(successor != dead)
        let refused = try await client.call("jobs.retry", ["id": .string(dead)])
        #expect(refused.errorCode == -32008)
        #expect(refused.error?.data?["holder_id"] == .string(successor))
        #expect(refused.error?.message.contains("same unique_key") == true)
        _ = try await client.result("jobs.cancel", ["id": .string(successor)])
        #expect(try await client.result("jobs.retry", ["id": .string(dead)])["state"] == "available")
    }

    @Test func aKeyStaysTakenForUniqueForMsAfterItsJobCompletes() async throws {
        let (first, url) = try await startBroker()
        let second = try await BrokerProcess(databaseURL: url)
        let client = try await first.connect()
        let elsewhere = try await second.connect()
        let job: JSONValue = ["type": "digest.send", "queue": "digests", "unique_key": "digest:ana", "unique_for_ms": 2000]
        let id = try await enqueue(client, job)
        #expect(try await reserve(client, ["digests"]).first?["id"] == .string(id))
        _ = try await client.result("ack", ["id": .string(id)])

        // Completed, yet the key is still taken, through either broker, alone or in a batch.
        let duplicate = try await elsewhere.result("enqueue", job)
        #expect(duplicate["id"] == .string(id))
        #expect(duplicate["duplicate"] == true)
        #expect(duplicate["state"] == "completed")
        let batch = try await client.result("enqueue_batch", ["jobs": [job, ["type": "digest.send", "queue": "digests"]]])
        #expect(batch["ids"]?[0] == .string(id))
        #expect(batch["duplicates"] == [0])

        // Once the window has passed, the key makes a new job.
        var fresh: JSONValue = [:]
        let deadline = ContinuousClock.now + .seconds(10)
        repeat {
            try await Task.sleep(for: .milliseconds(200))
            fresh = try await elsewhere.result("enqueue", job)
        } while fresh["duplicate"] == true && ContinuousClock.now < deadline
        #expect(fresh["duplicate"] == nil)
        #expect(fresh["id"] != .string(id))
        #expect(fresh["state"] == "available")

        // Without unique_for_ms the key is free as soon as the job completes; the window needs a key.
        let plain = try await enqueue(client, ["type": "once", "queue": "plain", "unique_key": "plain"])
        _ = try await reserve(client, ["plain"])
        _ = try await client.result("ack", ["id": .string(plain)])
        #expect(try await client.result("enqueue", ["type": "once", "queue": "plain", "unique_key": "plain"])["duplicate"] == nil)
        let refused = try await client.call("enqueue", ["type": "once", "unique_for_ms": 1000])
        #expect(refused.errorCode == -32602)
        #expect(refused.error?.data?["field"] == "unique_for_ms")
    }

    @Test func producersRacingAnAckGetTheCompletedJobOrOneNewJob() async throws {
        // The ack moves the job out while producers insert the same key: each must see the completed job
        // (its window holds the key) and none may create a second one.
        let (first, url) = try await startBroker()
        let second = try await BrokerProcess(databaseURL: url)
        let worker = try await first.connect()
        let job: JSONValue = ["type": "sync", "queue": "race", "unique_key": "race", "unique_for_ms": 60_000]
        let id = try await enqueue(worker, job)
        _ = try await reserve(worker, ["race"])
        let results = Collected<JSONValue>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for producer in 0..<6 {
                let broker = producer.isMultiple(of: 2) ? first : second
                group.addTask {
                    let client = try await broker.connect()
                    for _ in 0..<15 { results.append(try await client.result("enqueue", job)) }
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(30))
                _ = try await worker.result("ack", ["id": .string(id)])
            }
            try await group.waitForAll()
        }
        #expect(Set(results.all.compactMap { $0["id"]?.stringValue }) == [id])
        #expect(results.all.allSatisfy { $0["duplicate"] == true })
        #expect(try await worker.result("stats")["queues"]?["race"]?["counts"]?["available"] == 0)
    }
}
