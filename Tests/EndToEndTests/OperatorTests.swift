import Foundation
import GantryProtocol
import GantryTesting
import Testing

/// What an operator sees and steers without SQL: the HTTP side (probes, Prometheus), workers across brokers,
/// recent activity in `stats`, and cleanup — each through the real CLI or a real HTTP request.
@Suite(.serialized, .deadline(.seconds(300))) struct OperatorTests {
    @Test func probesAndPrometheusSeeWhatTheBrokerDoes() async throws {
        let (broker, _) = try await startBroker()
        #expect(try await broker.get("/live") == (200, "live\n"))
        #expect(try await broker.get("/ready") == (200, "ready\n"))
        #expect(try await broker.get("/nothing-here").status == 404)

        let client = try await broker.connect()
        _ = try await client.result("hello", ["client": "test", "worker": ["id": "w1", "queues": ["mail"], "concurrency": 2]])
        let done = try await enqueue(client, ["type": "email.send", "queue": "mail"])
        let failing = try await enqueue(client, ["type": "email.send", "queue": "mail"])
        _ = try await enqueue(client, ["type": "report.build", "queue": "reports", "delay_ms": 60_000])
        let reserved = try await reserve(client, ["mail"], max: 2)
        #expect(reserved.count == 2)
        _ = try await client.result("ack", ["id": .string(done)])
        _ = try await client.result("nack", ["id": .string(failing), "error": ["message": "smtp down"]])
        _ = try await client.call("no.such.method")

        let metrics = try await broker.get("/metrics")
        #expect(metrics.status == 200)
        let samples = Self.samples(metrics.body)
        #expect(samples[#"gantry_jobs_enqueued_total{queue="mail",type="email.send"}"#] == 2)
        #expect(samples[#"gantry_jobs_enqueued_total{queue="reports",type="report.build"}"#] == 1)
        #expect(samples[#"gantry_jobs_completed_total{queue="mail",type="email.send"}"#] == 1)
        #expect(samples[#"gantry_jobs_failed_total{queue="mail",type="email.send"}"#] == 1)
        #expect(samples[#"gantry_jobs_retried_total{queue="mail",type="email.send"}"#] == 1)
        #expect(samples[#"gantry_job_run_seconds_count{queue="mail",type="email.send"}"#] == 2)
        #expect(samples[#"gantry_queue_jobs{queue="mail",state="scheduled"}"#] == 1, "the retry waits")
        #expect(samples[#"gantry_queue_jobs{queue="mail",state="completed"}"#] == 1)
        #expect(samples[#"gantry_queue_jobs{queue="reports",state="scheduled"}"#] == 1)
        #expect(samples[#"gantry_queue_paused{queue="mail"}"#] == 0)
        #expect(samples["gantry_connections"] == 1)
        #expect(samples["gantry_worker_sessions"] == 1)
        #expect(samples[#"gantry_requests_total{method="ack",outcome="ok"}"#] == 1)
        #expect(samples[#"gantry_requests_total{method="unknown",outcome="error"}"#] == 1)
        #expect((samples["gantry_reserve_wait_seconds_count"] ?? 0) >= 1)
        #expect((samples["gantry_db_query_seconds_count"] ?? 0) >= 5)
        #expect(samples.keys.contains("gantry_db_connections_in_use"))

        // A dropped worker's jobs come back, and the metrics say why.
        let held = try await enqueue(client, ["type": "email.send", "queue": "mail"])
        #expect(try await reserve(client, ["mail"]).first?["id"]?.stringValue == held)
        await client.close()
        let observer = try await broker.connect()
        var back = false
        for _ in 0..<100 where !back {
            back = try await observer.result("jobs.get", ["id": .string(held)])["state"] == "available"
            if !back { try await Task.sleep(for: .milliseconds(50)) }
        }
        let after = Self.samples(try await broker.get("/metrics").body)
        #expect(after[#"gantry_leases_lost_total{queue="mail",reason="connection_closed"}"#] == 1)
        #expect(after["gantry_worker_sessions"] == 0)
    }

    @Test func readyFailsWhileDraining() async throws {
        let (broker, _) = try await startBroker(["--drain-grace-ms", "5000"])
        let worker = try await broker.connect()
        _ = try await enqueue(worker, ["type": "slow"])
        #expect(try await reserve(worker, ["default"]).count == 1)
        broker.signal(SIGTERM)
        var ready = try await broker.get("/ready")
        for _ in 0..<100 where ready.status == 200 {
            try await Task.sleep(for: .milliseconds(20))
            ready = try await broker.get("/ready")
        }
        #expect(ready.status == 503)
        #expect(ready.body.hasPrefix("draining"), "\(ready.body)")
        #expect(try await broker.get("/live").status == 200, "still serving the worker that holds a job")
        await worker.close()
    }

    @Test func statsSayWhatHappenedInTheLastMinuteAndHour() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        for _ in 0..<3 { _ = try await enqueue(client, ["type": "t", "queue": "q"]) }
        let jobs = try await reserve(client, ["q"], max: 3)
        #expect(jobs.count == 3)
        _ = try await client.result("ack", ["id": jobs[0]["id"]!])
        _ = try await client.result("ack", ["id": jobs[1]["id"]!])
        _ = try await client.result("nack", ["id": jobs[2]["id"]!, "error": ["message": "no"], "retry": false])
        let stats = try await client.result("stats")["queues"]?["q"]
        #expect(stats?["processed_last_minute"] == 3)
        #expect(stats?["failed_last_minute"] == 1)
        #expect(stats?["processed_last_hour"] == 3)
        #expect(stats?["failed_last_hour"] == 1)
        #expect(stats?["processed"] == 3)

        let table = try await runBuiltTool("gantry", ["stats", "--broker", "\(broker.host):\(broker.port)"])
        let row = table.output.split(separator: "\n").first { $0.hasPrefix("q ") } ?? ""
        #expect(row.contains("3/1"), "the table shows processed/failed for the minute, hour and all time: \(table.output)")
    }

    @Test func cleanupDeletesOldFinishedJobsInBatchesWithProgress() async throws {
        let (broker, _) = try await startBroker()
        let address = "\(broker.host):\(broker.port)"
        let client = try await broker.connect()
        let ids = try await client.result("enqueue_batch", ["jobs": .array((0..<1200).map { _ in ["type": "t"] })], timeout: .seconds(60))["ids"]?.arrayValue ?? []
        #expect(ids.count == 1200)
        var completed = 0
        while completed < 1200 {
            let jobs = try await reserve(client, ["default"], max: 100)
            try await withThrowingTaskGroup(of: Void.self) { acks in
                for job in jobs { acks.addTask { _ = try await client.result("ack", ["id": job["id"]!], timeout: .seconds(60)) } }
                try await acks.waitForAll()
            }
            completed += jobs.count
        }
        let dead = try await enqueue(client, ["type": "doomed"])
        _ = try await reserve(client, ["default"])
        _ = try await client.result("nack", ["id": .string(dead), "error": ["message": "no"], "retry": false])

        // Nothing is that old yet.
        let none = try await runBuiltTool("gantry", ["cleanup", "--completed-older-than", "1h", "--json", "--broker", address])
        #expect(none.status == 0, "\(none.output)")
        #expect(none.output.contains(#""deleted": 0"#), "\(none.output)")
        // The RPC stops at its limit (here after statements of 1,000 and 100 rows) and says there is more.
        let first = try await client.result("cleanup", ["states": ["completed"], "older_than_ms": 0, "limit": 1100], timeout: .seconds(60))
        #expect(first["deleted"] == 1100)
        #expect(first["more"] == true)
        let rest = try await runBuiltTool("gantry", ["cleanup", "--completed-older-than", "0s", "--broker", address])
        #expect(rest.status == 0)
        #expect(rest.output.contains("deleted 100 finished jobs"), "\(rest.output)")
        #expect(rest.output.contains("deleted 100 jobs so far"), "progress on stderr: \(rest.output)")
        #expect(try await client.result("jobs.get", ["id": .string(dead)])["state"] == "dead", "only completed jobs went")
        let stats = try await client.result("stats")["queues"]?["default"]
        #expect(stats?["counts"]?["completed"] == 0)

        let badAge = try await runBuiltTool("gantry", ["cleanup", "--completed-older-than", "a week", "--broker", address])
        #expect(badAge.status == 64)
        #expect(badAge.output.contains("7d"), "\(badAge.output)")
        let wrongState = try await client.call("cleanup", ["states": ["available"], "older_than_ms": 0])
        #expect(wrongState.errorCode == -32602)
        #expect(try await client.call("cleanup", ["states": ["completed"]]).error?.data?["field"] == "older_than_ms")
    }

    @Test func operatorsListQuietAndStopWorkersOnAnyBroker() async throws {
        let (first, url) = try await startBroker(["--broker-timeout-ms", "1000", "--drain-grace-ms", "500"])
        let second = try await BrokerProcess(databaseURL: url, extraArguments: ["--broker-timeout-ms", "1000", "--drain-grace-ms", "500"])
        func gantry(_ arguments: String...) async throws -> (status: Int32, output: String) {
            try await runBuiltTool("gantry", arguments + ["--broker", "\(first.host):\(first.port)"])
        }
        #expect(try await gantry("workers").output == "no workers connected\n")

        // One worker on each broker; a producer that is no worker.
        let local = try await first.connect()
        _ = try await local.result("hello", ["client": "py", "worker": ["id": "local-1", "queues": ["mail"], "concurrency": 4,
                                                                         "handlers": [["type": "email.send"]]]])
        let remote = try await second.connect()
        _ = try await remote.result("hello", ["worker": ["id": "remote-1", "queues": ["mail"], "concurrency": 1]])
        _ = try await (try await first.connect()).result("hello", ["client": "producer"])
        let job = try await enqueue(remote, ["type": "email.send", "queue": "mail"])
        #expect(try await reserve(remote, ["mail"]).count == 1)

        // The other broker's worker shows up with its next heartbeat (a fifth of the broker timeout).
        var listed: [JSONValue] = []
        func remoteHoldsItsJob() -> Bool { listed.contains { $0["id"] == "remote-1" && $0["jobs_held"] == 1 } }
        let operator_ = try await first.connect()
        for _ in 0..<50 where listed.count < 2 || !remoteHoldsItsJob() {
            try await Task.sleep(for: .milliseconds(100))
            listed = try await operator_.result("workers.list")["workers"]?.arrayValue ?? []
        }
        let output = try await gantry("workers", "--json").output
        let fromCLI = try JSONDecoder().decode(JSONValue.self, from: Data(output.utf8))["workers"]?.arrayValue ?? []
        #expect(fromCLI.map { $0["session_id"] } == listed.map { $0["session_id"] }, "gantry workers --json lists the same")
        #expect(Set(listed.compactMap { $0["id"]?.stringValue }) == ["local-1", "remote-1"])
        let remoteEntry = listed.first { $0["id"] == "remote-1" }
        #expect(remoteEntry?["jobs_held"] == 1)
        #expect(remoteEntry?["broker_id"]?.stringValue != listed.first { $0["id"] == "local-1" }?["broker_id"]?.stringValue)
        #expect(listed.first { $0["id"] == "local-1" }?["handlers"] == ["email.send"])
        let table = try await gantry("workers")
        #expect(table.output.hasPrefix("WORKER"), "\(table.output)")
        #expect(table.output.contains("local-1") && table.output.contains("running"))

        // Quiet reaches the worker on the other broker as a notification, and it is handed nothing more.
        #expect(try await gantry("workers", "quiet", "remote-1").output == "1 worker told to quiet\n")
        let quiet = try await remote.nextLine(where: { $0.contains("worker.quiet") }, timeout: .seconds(10))
        #expect(quiet == #"{"jsonrpc":"2.0","method":"worker.quiet"}"#)
        _ = try await enqueue(local, ["type": "email.send", "queue": "mail"])
        #expect(try await reserve(remote, ["mail"], waitMs: 300).isEmpty, "a quiet worker gets no new jobs")
        #expect(try await remote.result("ack", ["id": .string(job)])["ok"] == true, "but finishes what it holds")
        #expect(try await reserve(local, ["mail"]).count == 1, "other workers still get jobs")

        // Stop: every worker hears it; one that stays connected is disconnected and its jobs go back.
        #expect(try await gantry("workers", "stop", "--all").output == "2 workers told to stop\n")
        #expect(try await local.nextLine(where: { $0.contains("worker.stop") }) != nil)
        var closed = false
        for _ in 0..<100 where !closed {
            // nil once the connection is closed; a timeout while it is still open.
            closed = (try? await local.nextLine(where: { _ in false }, timeout: .milliseconds(50))) == .some(nil)
        }
        #expect(closed, "the broker hung up on a stopped worker that did not leave")
        var available: JSONValue?
        for _ in 0..<100 where available != 1 {
            available = try await operator_.result("stats")["queues"]?["mail"]?["counts"]?["available"]
            if available != 1 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(available == 1, "the job it held is back")
        #expect(try await gantry("workers", "quiet").status == 64, "an id or --all is required")
    }

    /// `name{labels} value` lines of a Prometheus exposition, by `name{labels}`.
    static func samples(_ text: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }
}
