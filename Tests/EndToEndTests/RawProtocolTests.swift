import Foundation
import GantryProtocol
import GantryTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What a person with `nc` sees: exact lines in, exact lines out, against the real gantryd.
@Suite(.deadline(.seconds(300))) struct RawProtocolTests {
    @Test func aJobGoesFromEnqueueToCompleted() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        let hello = try await client.result("hello", ["client": "e2e", "protocol": 1])
        #expect(hello["protocol"] == 1)
        #expect(hello["session_id"]?.stringValue?.isEmpty == false)

        let enqueued = try await client.result("enqueue", ["type": "email.send", "args": ["to": "a@b.c"], "queue": "mail"])
        #expect(enqueued["state"] == "available")
        let id = try #require(enqueued["id"]?.stringValue)

        let jobs = try await reserve(client, ["mail"])
        #expect(jobs.count == 1)
        #expect(jobs[0]["id"]?.stringValue == id)
        #expect(jobs[0]["args"] == ["to": "a@b.c"])
        #expect(jobs[0]["attempt"] == 1)
        #expect(jobs[0]["lease_expires_at"]?.stringValue != nil)

        #expect(try await client.result("ack", ["id": .string(id), "result": ["sent": true]]) == ["ok": true])
        let job = try await client.result("jobs.get", ["id": .string(id)])
        #expect(job["state"] == "completed")
        #expect(job["result"] == ["sent": true])

        let stats = try await client.result("stats")
        #expect(stats["queues"]?["mail"]?["counts"]?["completed"] == 1)
        #expect(stats["queues"]?["mail"]?["processed"] == 1)
        #expect(stats["broker"]?["connections"] == 1)
    }

    @Test func nackRetriesWithBackoffThenBuriesTheJob() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        _ = try await client.result("hello", ["client": "e2e", "worker": ["id": "mailer-1", "queues": ["default"], "concurrency": 2]])
        let id = try await enqueue(client, ["type": "flaky", "max_attempts": 2])
        _ = try await reserve(client, ["default"])

        let first = try await client.result("nack", ["id": .string(id), "error": ["message": "SMTP timeout", "kind": "Timeout", "backtrace": ["a.rb:1", "b.rb:2"]]])
        #expect(first["state"] == "scheduled")
        let nextRunAt = try #require(first["next_run_at"]?.stringValue.flatMap(GantryJSON.parseTimestamp))
        #expect(nextRunAt.timeIntervalSinceNow > 10, "the first retry waits at least 15 s")
        #expect(try await reserve(client, ["default"]).isEmpty, "a scheduled retry is not handed out early")

        // Ask the broker to retry at once instead, to reach the last attempt.
        let job = try await client.result("jobs.get", ["id": .string(id)])
        #expect(job["state"] == "scheduled")
        #expect(job["errors"]?[0]?["message"] == "SMTP timeout")
        #expect(job["errors"]?[0]?["kind"] == "Timeout")
        #expect(job["errors"]?[0]?["backtrace"] == ["a.rb:1", "b.rb:2"])
        #expect(job["errors"]?[0]?["worker"] == "mailer-1", "the worker that failed is named")
        #expect(try await client.result("stats")["broker"]?["workers"] == 1)
    }

    @Test func retryInMsZeroMakesTheJobAvailableAndTheLastFailureIsDead() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        let id = try await enqueue(client, ["type": "flaky", "max_attempts": 2])
        _ = try await reserve(client, ["default"])
        let first = try await client.result("nack", ["id": .string(id), "error": ["message": "one"], "retry_in_ms": 0])
        #expect(first["state"] == "available")
        let again = try await reserve(client, ["default"])
        #expect(again.first?["attempt"] == 2)
        let last = try await client.result("nack", ["id": .string(id), "error": ["message": "two"]])
        #expect(last["state"] == "dead")
        let job = try await client.result("jobs.get", ["id": .string(id)])
        #expect(job["state"] == "dead")
        #expect(job["errors"]?.arrayValue?.compactMap { $0["message"]?.stringValue } == ["one", "two"])

        // An operator brings the dead job back, history kept, with one more attempt.
        #expect(try await client.result("jobs.retry", ["id": .string(id)]) == ["id": .string(id), "state": "available"])
        let revived = try #require(try await reserve(client, ["default"]).first)
        #expect(revived["attempt"] == 3)
        #expect(revived["max_attempts"] == 3)
        let twice = try await client.call("jobs.retry", ["id": .string(id)])
        #expect(twice.errorCode == -32008, "a reserved job cannot be retried")
        #expect(twice.error?.data?["state"] == "reserved")

        // retry: false buries a job at once, whatever attempts remain.
        let other = try await enqueue(client, ["type": "bad-input"])
        _ = try await reserve(client, ["default"])
        #expect(try await client.result("nack", ["id": .string(other), "error": ["message": "invalid"], "retry": false])["state"] == "dead")
    }

    @Test func badInputGetsErrorsThatSayWhatToDoAndTheConnectionLives() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()

        try await client.send(#"{"jsonrpc":"2.0","id":1,"method":"enqueue","params":{"type":"x""#)
        let parse = try #require(try await client.nextLine())
        #expect(parse.contains(#""code":-32700"#))
        #expect(parse.contains(#""id":null"#))

        try await client.send(#"{"id":2,"method":"stats"}"#)
        #expect(try #require(try await client.nextLine()).contains(#""code":-32600"#))

        let unknown = try await client.call("enqueu", ["type": "x"])
        #expect(unknown.errorCode == -32601)
        #expect(unknown.error?.message.contains("enqueue") == true, "lists the methods that exist")

        let missing = try await client.call("enqueue", ["args": [1]])
        #expect(missing.errorCode == -32602)
        #expect(missing.error?.data?["field"] == "type")

        let priority = try await client.call("enqueue", ["type": "x", "priority": 40000])
        #expect(priority.error?.data?["field"] == "priority")

        let queue = try await client.call("enqueue", ["type": "x", "queue": "no spaces please"])
        #expect(queue.error?.data?["field"] == "queue")

        let ack = try await client.call("ack", ["id": "999999"])
        #expect(ack.errorCode == -32002, "no such job")

        // A notification gets no answer; the next line is the next request's.
        try await client.send(#"{"jsonrpc":"2.0","method":"stats"}"#)
        let after = try await client.call("stats")
        #expect(after.error == nil)

        // Random bytes and invalid UTF-8 are parse errors too, never the end of the broker.
        try await client.sendRaw(Data([0xFF, 0xFE, 0x00, 0x7B, 0x0A]))
        #expect(try #require(try await client.nextLine()).contains("-32700"))
        try await client.send(String(repeating: "[", count: 10_000))
        #expect(try #require(try await client.nextLine()).contains("-32700"))
        try await client.send(String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000))
        #expect(try #require(try await client.nextLine()).contains("-32700"), "nesting too deep to be a request")
        // Foundation's reader traps on this line (working out the line and column of its depth error); the
        // broker's own reader answers it.
        try await client.send(String(repeating: "\r", count: 13) + String(repeating: "[", count: 513))
        #expect(try #require(try await client.nextLine()).contains("-32700"), "CRs, then nesting too deep")
        let huge = try await client.call("enqueue", ["type": "x", "priority": 1e30])
        #expect(huge.error?.data?["field"] == "priority")
        // Inside args and meta every number is kept as written, even one beyond a 64-bit float.
        try await client.send(#"{"jsonrpc":"2.0","id":99,"method":"enqueue","params":{"type":"x","args":[1e999],"meta":{"n":-1e999}}}"#)
        let beyond = try GantryJSON.makeDecoder().decode(RPCResponse.self, from: Data(try #require(try await client.nextLine()).utf8))
        #expect(beyond.id == .number(99))
        let kept = try await client.result("jobs.get", ["id": try #require(beyond.result?["id"])])
        #expect(kept["args"] == [.number("1e999")] && kept["meta"] == ["n": .number("-1e999")], "\(kept)")
        #expect(try await client.call("stats").error == nil)
    }

    @Test func batchesAnswerInOneLine() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        try await client.send(#"[{"jsonrpc":"2.0","id":"a","method":"enqueue","params":{"type":"x"}},{"jsonrpc":"2.0","method":"stats"},{"jsonrpc":"2.0","id":"c","method":"nope"}]"#)
        let line = try #require(try await client.nextLine())
        let answers = try JSONDecoder().decode([RPCResponse].self, from: Data(line.utf8))
        #expect(answers.map(\.id) == [.string("a"), .string("c")])
        #expect(answers[0].result?["state"] == "available")
        #expect(answers[1].errorCode == -32601)
    }

    /// A batch's requests run at once: a waiting reserve in it gets the job an enqueue later in the same batch
    /// stores (one after another, the reserve would wait its 20 seconds out and come back empty).
    @Test func aBatchsRequestsRunAtOnce() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        let started = ContinuousClock.now
        try await client.send(#"[{"jsonrpc":"2.0","id":1,"method":"reserve","params":{"queues":["together"],"wait_ms":20000}},{"jsonrpc":"2.0","id":2,"method":"enqueue","params":{"type":"x","queue":"together"}}]"#)
        let line = try #require(try await client.nextLine(timeout: .seconds(60)))
        let answers = try JSONDecoder().decode([RPCResponse].self, from: Data(line.utf8))
        #expect(answers.map(\.id) == [.number(1), .number(2)], "answers keep the requests' order")
        let enqueued = try #require(answers[1].result?["id"])
        #expect(answers[0].result?["jobs"]?[0]?["id"] == enqueued)
        #expect(ContinuousClock.now - started < .seconds(15))
    }

    /// `ack` with `ids`: the held ones are acked, the others answered per id, in one request.
    @Test func ackWithIDsAnswersEachJob() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        _ = try await client.result("enqueue_batch", ["jobs": [["type": "a"], ["type": "a"], ["type": "a"]]])
        let jobs = try await reserve(client, ["default"], max: 3)
        let ids = jobs.compactMap { $0["id"]?.stringValue }
        #expect(ids.count == 3)
        let first = try await client.result("ack", ["ids": .array(ids.prefix(2).map(JSONValue.string)), "results": .object([ids[0]: ["n": 1]])])
        #expect(first["ok"] == true)
        #expect(first["acked"] == .array(ids.prefix(2).map(JSONValue.string)))
        #expect(first["lost"] == [])
        let second = try await client.result("ack", ["ids": .array([ids[2], ids[0], "999999999"].map(JSONValue.string))])
        #expect(second["ok"] == false)
        #expect(second["acked"] == .array([.string(ids[2])]))
        #expect(second["lost"] == [["id": .string(ids[0]), "state": "completed"], ["id": "999999999"]])
        let done = try await client.result("jobs.get", ["id": .string(ids[0])])
        #expect(done["result"] == ["n": 1])
        let other = try await broker.connect()
        let refused = try await other.call("ack", ["ids": [.string(ids[1]), .string(ids[1])]])
        #expect(refused.error?.data?["field"] == "ids[1]")
    }

    @Test func enqueueBatchIsAllOrNothing() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        let bad = try await client.call("enqueue_batch", ["jobs": [["type": "a"], ["type": "b", "priority": 0]]])
        #expect(bad.error?.data?["field"] == "jobs[1].priority")
        #expect(try await reserve(client, ["default"]).isEmpty)
        let good = try await client.result("enqueue_batch", ["jobs": [["type": "a"], ["type": "b"]]])
        #expect(good["ids"]?.arrayValue?.count == 2)
    }

    @Test func anOversizeLineGetsAnErrorThenTheConnectionCloses() async throws {
        let (broker, _) = try await startBroker(["--max-line-bytes", "4096"])
        let client = try await broker.connect()
        let huge = #"{"jsonrpc":"2.0","id":1,"method":"enqueue","params":{"type":"x","args":[""# + String(repeating: "a", count: 8000) + #""]}}"#
        try await client.send(huge)
        let line = try #require(try await client.nextLine())
        #expect(line.contains("-32006"))
        #expect(line.contains("4096"))
        #expect(try await client.nextLine() == nil, "the broker closes the connection")
        // Other clients are unaffected.
        let other = try await broker.connect()
        #expect(try await other.call("stats").error == nil)
    }

    @Test func anAckIsNotStuckBehindALongPollOnTheSameConnection() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        let id = try await enqueue(client, ["type": "x", "queue": "work"])
        _ = try await reserve(client, ["work"])
        try await client.sendRequest("reserve", ["queues": ["empty"], "wait_ms": 3000], id: 1)
        try await client.sendRequest("ack", ["id": .string(id)], id: 2)
        let first = try #require(try await client.nextLine())
        #expect(first.contains(#""id":2,"#), "the ack answers first: \(first)")
        let second = try #require(try await client.nextLine(timeout: .seconds(10)))
        #expect(second.contains(#""id":1,"#))
        #expect(second.contains(#""jobs":[]"#))
    }

    @Test func delayedJobsWaitForTheirTime() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        let enqueuedAt = ContinuousClock.now
        let result = try await client.result("enqueue", ["type": "later", "delay_ms": 1500])
        #expect(result["state"] == "scheduled")
        let jobs = try await reserve(client, ["default"], waitMs: 5000)
        #expect(jobs.count == 1)
        #expect(ContinuousClock.now - enqueuedAt >= .milliseconds(1400))
    }

    @Test func extendReportsWhichLeasesAreHeld() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        let id = try await enqueue(client, ["type": "long"])
        let job = try #require(try await reserve(client, ["default"], leaseMs: 5000).first)
        let extended = try await client.result("extend", ["ids": [.string(id), "424242"], "lease_ms": 600_000])
        #expect(extended["lost"] == ["424242"])
        let newExpiry = try #require(extended["leases"]?[0]?["lease_expires_at"]?.stringValue.flatMap(GantryJSON.parseTimestamp))
        let oldExpiry = try #require(job["lease_expires_at"]?.stringValue.flatMap(GantryJSON.parseTimestamp))
        #expect(newExpiry > oldExpiry.addingTimeInterval(500))
    }
}

/// Garbage at the real broker: every line gets exactly one answer and the broker keeps serving.
@Suite(.deadline(.seconds(300))) struct BrokerFuzzTests {
    @Test func randomLinesEachGetOneAnswer() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        var rng = SeededGenerator(seed: 0x6675_7A7A)
        let lines = 1000
        for index in 0..<lines {
            var bytes: [UInt8]
            if index % 2 == 0 {
                bytes = (0..<Int.random(in: 1..<200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                bytes.removeAll { $0 == UInt8(ascii: "\n") }
                bytes.insert(UInt8(ascii: "x"), at: 0)
            } else {
                let methods = ["enqueue", "reserve", "ack", "nack", "extend", "jobs.get", "jobs.retry", "hello", "stats", "nope"]
                let params: JSONObject = ["type": "t", "queues": ["q"], "id": .string(String(index)), "priority": .int(Int64.random(in: -5...40_000, using: &rng))]
                let request: JSONValue = ["jsonrpc": "2.0", "id": .int(Int64(index)), "method": .string(methods.randomElement(using: &rng)!),
                                          "params": .object(params.filter { _ in Bool.random(using: &rng) })]
                bytes = Array(try JSONEncoder().encode(request))
            }
            try await client.sendRaw(Data(bytes + [UInt8(ascii: "\n")]))
        }
        var answers = 0
        while answers < lines, try await client.nextLine(timeout: .seconds(20)) != nil { answers += 1 }
        #expect(answers == lines)
        #expect(try await client.call("stats").error == nil)
    }
}

@Suite(.deadline(.seconds(300))) struct QueueControlTests {
    @Test func pauseSurvivesARestartAndResumeWakesWaitingWorkers() async throws {
        let (broker, url) = try await startBroker()
        let client = try await broker.connect()
        #expect(try await client.result("queues.pause", ["queue": "mail"]) == ["queue": "mail", "paused": true])
        let id = try await enqueue(client, ["type": "x", "queue": "mail"])
        #expect(try await reserve(client, ["mail"]).isEmpty, "a paused queue hands out nothing")
        let listed = try await client.result("queues.list")
        #expect(listed["queues"]?["mail"]?["paused"] == true)
        #expect(listed["queues"]?["mail"]?["counts"]?["available"] == 1)

        broker.signal(SIGTERM)
        try await broker.waitForExit()
        let restarted = try await BrokerProcess(databaseURL: url)
        let worker = try await restarted.connect()
        #expect(try await reserve(worker, ["mail"]).isEmpty, "still paused after a restart")
        try await worker.sendRequest("reserve", ["queues": ["mail"], "wait_ms": 10_000], id: 1)
        try await Task.sleep(for: .milliseconds(200))
        let admin = try await restarted.connect()
        #expect(try await admin.result("queues.resume", ["queue": "mail"])["paused"] == false)
        let woken = try await worker.response(id: 1, timeout: .seconds(5))
        #expect(woken.result?["jobs"]?[0]?["id"]?.stringValue == id, "resuming wakes the waiting worker")
        #expect(try await admin.call("queues.pause", ["queue": "no spaces"]).error?.data?["field"] == "queue")
    }
}

@Suite(.deadline(.seconds(300))) struct JobListTests {
    @Test func jobsAreListedNewestFirstFilteredAndPaged() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        var ids: [String] = []
        for index in 0..<5 { ids.append(try await enqueue(client, ["type": .string(index % 2 == 0 ? "even" : "odd"), "queue": "q", "tags": [.string("t\(index)")]])) }
        let first = try #require(try await reserve(client, ["q"]).first?["id"]?.stringValue)
        _ = try await client.result("nack", ["id": .string(first), "error": ["message": "no"], "retry": false])

        let page1 = try await client.result("jobs.list", ["queue": "q", "limit": 2])
        #expect(page1["jobs"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[4], ids[3]])
        let cursor = try #require(page1["next_cursor"]?.stringValue)
        let page2 = try await client.result("jobs.list", ["queue": "q", "limit": 2, "cursor": .string(cursor)])
        #expect(page2["jobs"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[2], ids[1]])
        let page3 = try await client.result("jobs.list", ["queue": "q", "limit": 2, "cursor": page2["next_cursor"] ?? .null])
        #expect(page3["jobs"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[0]], "finished jobs are listed too")
        #expect(page3["next_cursor"] == nil)

        let dead = try await client.result("jobs.list", ["state": "dead"])
        #expect(dead["jobs"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [first])
        let odd = try await client.result("jobs.list", ["type": "odd"])
        #expect(odd["jobs"]?.arrayValue?.count == 2)
        let tagged = try await client.result("jobs.list", ["tag": "t3"])
        #expect(tagged["jobs"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[3]])
        #expect(try await client.call("jobs.list", ["state": "deadd"]).error?.data?["field"] == "state")
        #expect(try await client.call("jobs.list", ["limit": 0]).error?.data?["field"] == "limit")
    }
}

@Suite(.deadline(.seconds(300))) struct JobControlTests {
    @Test func waitingJobsCanBeCancelledAndFinishedOnesDiscarded() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        let later = try await enqueue(client, ["type": "x", "delay_ms": 60_000])
        let held = try await enqueue(client, ["type": "y"])
        #expect(try await client.result("jobs.cancel", ["id": .string(later)]) == ["id": .string(later), "state": "cancelled"])
        #expect(try await client.result("jobs.get", ["id": .string(later)])["state"] == "cancelled")
        _ = try await reserve(client, ["default"])
        let busy = try await client.call("jobs.discard", ["id": .string(held)])
        #expect(busy.errorCode == -32008)
        #expect(busy.error?.message.contains("A worker holds it") == true)

        #expect(try await client.result("jobs.discard", ["id": .string(later)]) == ["id": .string(later), "discarded": true])
        #expect(try await client.call("jobs.get", ["id": .string(later)]).errorCode == -32002, "gone for good")
        #expect(try await client.call("jobs.discard", ["id": .string(later)]).errorCode == -32002)
        let stats = try await client.result("stats")
        #expect(stats["queues"]?["default"]?["counts"]?["cancelled"] == 0)
    }

    @Test func cancellingARunningJobReachesItsWorkerAndIsNeverRetried() async throws {
        let (broker, _) = try await startBroker()
        let worker = try await broker.connect()
        let operator_ = try await broker.connect()
        func cancel(_ id: String) async throws -> JSONValue { try await operator_.result("jobs.cancel", ["id": .string(id)]) }

        // Acked anyway: it did run to the end, so it is completed, and the ack says the cancellation was asked.
        let finishes = try await enqueue(worker, ["type": "x"])
        _ = try await reserve(worker, ["default"])
        #expect(try await cancel(finishes) == ["id": .string(finishes), "state": "reserved"])
        let extended = try await worker.result("extend", ["ids": [.string(finishes)]])
        #expect(extended["leases"]?[0]?["cancel_requested"] == true, "extend tells the worker: \(extended)")
        #expect(try await worker.result("ack", ["id": .string(finishes)]) == ["ok": true, "cancel_requested": true])
        let completed = try await operator_.result("jobs.get", ["id": .string(finishes)])
        #expect(completed["state"] == "completed")
        #expect(completed["cancel_requested_at"] != nil)

        // Nacked, even asking for a retry: cancelled.
        let stops = try await enqueue(worker, ["type": "x"])
        _ = try await reserve(worker, ["default"])
        _ = try await cancel(stops)
        let nacked = try await worker.result("nack", ["id": .string(stops), "error": ["message": "stopped"], "retry": true])
        #expect(nacked == ["state": "cancelled"])

        // Its lease runs out: cancelled, not put back.
        let abandoned = try await enqueue(worker, ["type": "x"])
        _ = try await reserve(worker, ["default"], leaseMs: 1000)
        _ = try await cancel(abandoned)
        var state: JSONValue?
        for _ in 0..<100 where state != "cancelled" {
            try await Task.sleep(for: .milliseconds(50))
            state = try await operator_.result("jobs.get", ["id": .string(abandoned)])["state"]
        }
        #expect(state == "cancelled")
        #expect(try await reserve(worker, ["default"]).isEmpty, "never handed out again")
        let counts = try await operator_.result("stats")["queues"]?["default"]?["counts"]
        #expect(counts?["cancelled"] == 2)
        #expect(counts?["completed"] == 1)
        #expect(try await operator_.call("jobs.cancel", ["id": .string(finishes)]).errorCode == -32008, "a finished job cannot be cancelled")
    }
}
