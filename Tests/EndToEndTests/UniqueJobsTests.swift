import Foundation
import GantryProtocol
import GantryTesting
import Testing

/// `unique_key`: while a job with the key waits or runs, enqueueing another returns that job, on any broker.
@Suite struct UniqueJobsTests {
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
}
