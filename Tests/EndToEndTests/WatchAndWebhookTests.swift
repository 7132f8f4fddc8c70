import ChildProcesses
import Foundation
import GantryProtocol
import GantryTesting
import Testing

/// Lifecycle events through real `gantryd` processes: a watcher on one broker hears what happens through
/// another; a webhook reaches a real HTTP receiver signed, is retried after a 500, and is delivered by a new
/// broker after the first one died.
@Suite(.deadline(.seconds(240))) struct WatchAndWebhookTests {
    @Test func aWatcherHearsAJobDieThroughAnotherBroker() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let first = try await BrokerProcess(databaseURL: url)
        let second = try await BrokerProcess(databaseURL: url)
        let watcher = try await first.connect()
        let watching = try await watcher.result("watch", ["events": ["job.dead", "job.failed"], "queues": ["billing"]])
        #expect(watching["watching"] == ["job.dead", "job.failed"])

        let worker = try await second.connect()
        let other = try await enqueue(worker, ["type": "report.build", "queue": "reports", "max_attempts": 1])
        let id = try await enqueue(worker, ["type": "invoice.pay", "queue": "billing", "max_attempts": 2])
        for queue in ["reports", "billing", "billing"] {
            let job = try #require(try await reserve(worker, [queue], waitMs: 5000).first)
            _ = try await worker.result("nack", ["id": try #require(job["id"]), "error": ["message": "card declined", "kind": "CardError"], "retry_in_ms": 0])
        }
        var heard: [JSONValue] = []
        while heard.count < 2, let line = try await watcher.nextLine(where: { $0.contains(#""method":"event""#) }, timeout: .seconds(10)) {
            heard.append(try JSONReader.read(Data(line.utf8)))
        }
        #expect(heard.map { $0["params"]?["event"]?.stringValue } == ["job.failed", "job.dead"], "\(heard)")
        let dead = try #require(heard.last?["params"])
        #expect(dead["queue"] == "billing" && dead["job"]?["id"] == .string(id) && dead["job"]?["attempt"] == 2)
        #expect(dead["job"]?["error"]?["message"] == "card declined" && dead["job"]?["error"]?["kind"] == "CardError")
        #expect(!heard.contains { $0["params"]?["job"]?["id"] == .string(other) }, "the reports queue is not watched")

        _ = try await watcher.result("unwatch")
        let after = try await enqueue(worker, ["type": "invoice.pay", "queue": "billing", "max_attempts": 1])
        let job = try #require(try await reserve(worker, ["billing"], waitMs: 5000).first)
        #expect(job["id"] == .string(after))
        _ = try await worker.result("nack", ["id": .string(after), "error": ["message": "again"]])
        let unheard = try? await watcher.nextLine(where: { $0.contains(#""method":"event""#) }, timeout: .seconds(2))
        #expect(unheard == nil, "unwatched, it hears nothing: \(unheard ?? "")")

        // A worker that goes away holding a job: its job is put back, and watchers hear worker.lost.
        _ = try await watcher.result("watch", ["events": ["worker.lost"]])
        let leaving = try await second.connect()
        _ = try await enqueue(worker, ["type": "invoice.pay", "queue": "billing"])
        #expect(try await reserve(leaving, ["billing"], waitMs: 5000).count == 1)
        await leaving.close()
        let lostLine = try await watcher.nextLine(where: { $0.contains(#""worker.lost""#) }, timeout: .seconds(10))
        let lost = try JSONReader.read(Data((lostLine ?? "{}").utf8))["params"]
        #expect(lost?["worker"]?["jobs_put_back"] == 1 && lost?["worker"]?["queues"] == ["billing"], "\(String(describing: lost))")

        let refused = try await watcher.call("watch", ["events": ["job.exploded"]])
        #expect(refused.error?.data?["field"] == "events[0]")
    }

    /// A Python HTTP receiver that checks each POST's signature the way a real receiver would, answers with
    /// the status in its mode file, and logs what it got.
    static let receiver = #"""
        import hashlib, hmac, http.server, json, sys
        log_path, mode_path, secret = sys.argv[1], sys.argv[2], sys.argv[3].encode()
        class Hook(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
                status = int(open(mode_path).read().strip())
                with open(log_path, "a") as log:
                    log.write(json.dumps({"delivery": self.headers["X-Gantry-Delivery"], "event": self.headers["X-Gantry-Event"],
                                          "signed": hmac.compare_digest(expected, self.headers["X-Gantry-Signature"] or ""),
                                          "status": status, "body": json.loads(body)}) + "\n")
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"try later")
            def log_message(self, *args):
                pass
        server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """#

    @Test func aWebhookArrivesSignedIsRetriedAfterA500AndIsDeliveredAfterABrokerRestart() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-webhook-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (script, log, mode, portFile) = (directory.appendingPathComponent("receiver.py"), directory.appendingPathComponent("log.jsonl"),
                                             directory.appendingPathComponent("mode"), directory.appendingPathComponent("port"))
        try Self.receiver.write(to: script, atomically: true, encoding: .utf8)
        try "500".write(to: mode, atomically: true, encoding: .utf8)
        let secret = "a-secret-of-at-least-16-bytes"
        let receiver = try ChildProcess(
            executable: "/usr/bin/env", arguments: ["python3", script.path, log.path, mode.path, secret],
            standardOutput: .file(portFile.path), standardError: .standardOutput)
        defer { receiver.signal(SIGKILL); _ = receiver.waitBlocking(timeout: .seconds(5)) }
        #expect(try await eventually(timeout: .seconds(10)) { ((try? String(contentsOf: portFile, encoding: .utf8)) ?? "").hasSuffix("\n") })
        let port = try String(contentsOf: portFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        func received() -> [JSONValue] {
            ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { try? JSONReader.read(Data($0.utf8)) }
        }

        let first = try await BrokerProcess(databaseURL: url)
        let client = try await first.connect()
        let made = try await client.result("webhooks.upsert", [
            "name": "pager", "url": .string("http://127.0.0.1:\(port)/hook"), "events": ["job.dead"], "queues": ["billing"], "secret": .string(secret),
        ])
        #expect(made["webhook"]?["secret"] == nil, "the secret is never answered")
        let id = try await enqueue(client, ["type": "invoice.pay", "queue": "billing", "max_attempts": 1])
        let job = try #require(try await reserve(client, ["billing"], waitMs: 5000).first)
        _ = try await client.result("nack", ["id": try #require(job["id"]), "error": ["message": "card declined"]])
        #expect(try await eventually {
            try await client.result("webhooks.deliveries", ["name": "pager"])["deliveries"]?[0]?["last_status"] == 500
        }, "the first attempt reached the receiver and got its 500")
        let pending = try await client.result("webhooks.deliveries", ["name": "pager"])["deliveries"]?[0]
        #expect(pending?["delivered_at"] == nil && pending?["next_attempt_at"] != nil, "\(String(describing: pending))")

        // The broker dies with the delivery still owed; a new one, on the same database, delivers it.
        first.signal(SIGKILL)
        try "200".write(to: mode, atomically: true, encoding: .utf8)
        let second = try await BrokerProcess(databaseURL: url)
        let again = try await second.connect()
        #expect(try await eventually { received().contains { $0["status"] == 200 } }, "\(received())")
        let posts = received()
        #expect(posts.count >= 2 && posts.allSatisfy { $0["signed"] == true }, "every POST signed with the secret: \(posts)")
        #expect(Set(posts.compactMap { $0["delivery"]?.stringValue }).count == 1, "one delivery id across attempts and brokers")
        #expect(posts.first?["event"] == "job.dead")
        #expect(posts.first?["body"]?["job"]?["id"] == .string(id) && posts.first?["body"]?["queue"] == "billing")
        // The receiver logs before it answers; the broker records the answer just after.
        #expect(try await eventually { try await again.result("webhooks.deliveries", ["name": "pager"])["deliveries"]?[0]?["delivered_at"] != nil })
        let delivered = try #require(try await again.result("webhooks.deliveries", ["name": "pager"])["deliveries"]?[0])
        #expect(delivered["delivered_at"] != nil && delivered["last_status"] == 200 && delivered["last_response"] == "ok")
        #expect((delivered["attempts"]?.intValue ?? 0) >= 2)

        let bad = try await again.call("webhooks.upsert", ["name": "x", "url": "ftp://example.com", "events": ["job.dead"], "secret": .string(secret)])
        #expect(bad.error?.data?["field"] == "url")
        let short = try await again.call("webhooks.upsert", ["name": "x", "url": "http://example.com", "events": ["job.dead"], "secret": "short"])
        #expect(short.error?.data?["field"] == "secret")
    }

    /// A queue whose oldest available job waited past its backlog_alert_ms raises queue.backlog once; a cron
    /// schedule fired late by a broker that was down raises cron.missed with the ticks it skipped. (Read from a
    /// webhook's outbox, which keeps what an unreachable receiver did not take.)
    @Test func aBacklogAndMissedCronTicksRaiseTheirEvents() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let first = try await BrokerProcess(databaseURL: url)
        let client = try await first.connect()
        _ = try await client.result("webhooks.upsert", [
            "name": "ops", "url": "http://127.0.0.1:9/unreachable", "events": ["queue.backlog", "cron.missed"], "secret": "0123456789abcdef",
        ])
        let configured = try await client.result("queues.configure", ["queue": "reports", "backlog_alert_ms": 1000])
        #expect(configured["backlog_alert_ms"] == 1000)
        _ = try await enqueue(client, ["type": "report.build", "queue": "reports"])
        _ = try await client.result("cron.upsert", ["name": "tick", "cron": "* * * * * *", "type": "tick.tock", "queue": "ticks"])
        func deliveries(_ event: String, on client: LineClient) async throws -> [JSONValue] {
            let all = try await client.result("webhooks.deliveries", ["name": "ops"])["deliveries"]?.arrayValue ?? []
            return all.filter { $0["event"]?.stringValue == event }
        }
        #expect(try await eventually(timeout: .seconds(20)) { try await !deliveries("queue.backlog", on: client).isEmpty })
        let backlog = try #require(try await deliveries("queue.backlog", on: client).first?["body"])
        #expect(backlog["queue"] == "reports" && backlog["backlog"]?["threshold_ms"] == 1000 && backlog["backlog"]?["available"] == 1, "\(backlog)")

        first.signal(SIGKILL)
        try await Task.sleep(for: .seconds(3))
        let second = try await BrokerProcess(databaseURL: url)
        let again = try await second.connect()
        #expect(try await eventually(timeout: .seconds(20)) { try await !deliveries("cron.missed", on: again).isEmpty })
        let missed = try #require(try await deliveries("cron.missed", on: again).first?["body"])
        #expect(missed["queue"] == "ticks" && missed["schedule"]?["name"] == "tick", "\(missed)")
        #expect((missed["schedule"]?["missed"]?.intValue ?? 0) >= 2, "three seconds down skip at least two ticks: \(missed)")
        #expect(try await deliveries("queue.backlog", on: again).count == 1, "the backlog alerted once, not on every check")
        try await Task.sleep(for: .milliseconds(1500))
        #expect(try await deliveries("cron.missed", on: again).count == 1, "ticks fired on time miss nothing")
        let refused = try await again.call("queues.configure", ["queue": "reports", "backlog_alert_ms": 10])
        #expect(refused.error?.data?["field"] == "backlog_alert_ms")
    }
}
