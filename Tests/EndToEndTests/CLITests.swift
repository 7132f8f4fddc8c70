import Foundation
import GantryProtocol
import GantryTesting
import Testing

/// The `gantry` operator CLI, run as a real process against a real broker.
@Suite(.deadline(.seconds(300))) struct CLITests {
    @Test func anOperatorPublishesListsShowsAndReplaysEvents() async throws {
        let (broker, _) = try await startBroker()
        let address = "\(broker.host):\(broker.port)"
        func gantry(_ arguments: String...) async throws -> (status: Int32, output: String) {
            try await runBuiltTool("gantry", arguments + ["--broker", address])
        }
        let client = try await broker.connect()
        _ = try await client.result("subscriptions.upsert", ["name": "receipts", "event": "order.*", "target": ["type": "receipt.send", "queue": "mail"]])
        let published = try await gantry("events", "publish", "order.paid", "--payload", #"{"order_id": 42}"#, "--key", "order-42")
        #expect(published.status == 0 && published.output.hasPrefix("event 1: triggered receipts → job "), "\(published.output)")
        let again = try await gantry("events", "publish", "order.paid", "--key", "order-42")
        #expect(again.output.hasPrefix("event 1 (published before with this key)"), "\(again.output)")
        let listed = try await gantry("events", "--type", "order.*")
        #expect(listed.output.contains("order.paid") && listed.output.contains("receipts → job"), "\(listed.output)")
        let shown = try await gantry("events", "show", "1")
        #expect(shown.output.contains(#"payload {"order_id":42}"#) && shown.output.contains("(available)"), "\(shown.output)")
        let replayed = try await gantry("events", "replay", "1")
        #expect(replayed.output.hasPrefix("event 1 replayed as 2: triggered receipts → job"), "\(replayed.output)")
        let subscriptions = try await gantry("events", "subscriptions")
        #expect(subscriptions.output.contains("receipts") && subscriptions.output.contains("order.*"), "\(subscriptions.output)")
        let bad = try await gantry("events", "publish", "order.paid", "--payload", "{not json")
        #expect(bad.status == 64, "\(bad.output)")
    }

    @Test func anOperatorListsRunsAndSavesPackages() async throws {
        let (broker, _) = try await startBroker()
        let address = "\(broker.host):\(broker.port)"
        func gantry(_ arguments: String...) async throws -> (status: Int32, output: String) {
            try await runBuiltTool("gantry", arguments + ["--broker", address])
        }
        let client = try await broker.connect()
        _ = try await client.result("packages.upsert", [
            "name": "nightly.report", "steps": ["report.fetch", ["parallel": ["report.mail", "report.archive"]]], "config": ["region": "eu"],
            "queue": "reports", "triggers": ["cron": "0 3 * * *", "events": ["report.requested"]],
        ])
        let listed = try await gantry("packages")
        #expect(listed.status == 0 && listed.output.contains("report.fetch › (report.mail + report.archive)"), "\(listed.output)")
        #expect(listed.output.contains("cron 0 3 * * * (UTC); events report.requested; by hand"), "\(listed.output)")
        let run = try await gantry("packages", "run", "nightly.report", "--config", #"{"region": "us"}"#)
        #expect(run.status == 0 && run.output.hasPrefix("package nightly.report started: execution 1"), "\(run.output)")
        let executions = try await gantry("packages", "executions", "nightly.report")
        #expect(executions.output.contains("report.fetch pending, report.mail unprocessed, report.archive unprocessed"), "\(executions.output)")
        #expect(executions.output.contains("manual"), "\(executions.output)")
        let saved = try await gantry("packages", "save", "1", "keep", "--description", "the first run")
        #expect(saved.output == "execution 1 of nightly.report saved as keep\n", "\(saved.output)")
        let typo = try await gantry("packages", "run", "nightly.report", "--config", #"{"regoin": "us"}"#)
        #expect(typo.status != 0 && typo.output.contains("config.regoin is not a key"), "\(typo.output)")
        let bad = try await gantry("packages", "run", "nightly.report", "--config", "[1]")
        #expect(bad.status == 64, "\(bad.output)")
    }

    @Test func anOperatorListsShowsRetriesAndCancelsOperations() async throws {
        let (broker, _) = try await startBroker()
        let address = "\(broker.host):\(broker.port)"
        func gantry(_ arguments: String...) async throws -> (status: Int32, output: String) {
            try await runBuiltTool("gantry", arguments + ["--broker", address])
        }
        let client = try await broker.connect()
        let started = try await client.result("operations.start", [
            "name": "signup", "queue": "signup", "globals": ["user_id": 7],
            "branches": ["main": ["account.create", ["type": "card.charge", "max_attempts": 1], "receipt.send"]],
        ])
        let id = try #require(started["id"]?.stringValue)
        let first = try #require(try await reserve(client, ["signup"], waitMs: 5000).first)
        _ = try await client.result("ack", ["id": first["id"] ?? .null])
        let second = try #require(try await reserve(client, ["signup"], waitMs: 5000).first)
        _ = try await client.result("nack", ["id": second["id"] ?? .null, "error": ["message": "card declined"]])

        let listed = try await gantry("operations", "--state", "failed", "--globals", #"{"user_id": 7}"#)
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.output.contains("signup") && listed.output.contains("failed") && listed.output.contains("main[1]"), "\(listed.output)")
        let shown = try await gantry("operations", "show", id)
        #expect(shown.output.contains("failed   at main[1]: card declined"), "\(shown.output)")
        #expect(shown.output.contains("receipt.send") && shown.output.contains("unprocessed"), "\(shown.output)")
        let retried = try await gantry("operations", "retry", id)
        #expect(retried.status == 0 && retried.output.hasPrefix("operation \(id) running: step job"), "\(retried.output)")
        let cancelled = try await gantry("operations", "cancel", id)
        #expect(cancelled.output == "operation \(id) cancelled: 1 waiting step cancelled, 0 running asked to stop\n", "\(cancelled.output)")
        let again = try await gantry("operations", "cancel", id)
        #expect(again.status == 1 && again.output.contains("is cancelled"), "\(again.output)")
        let badFilter = try await gantry("operations", "--globals", "[1]")
        #expect(badFilter.status == 64, "\(badFilter.output)")
    }

    @Test func anOperatorEnqueuesInspectsPausesAndRetries() async throws {
        let (broker, _) = try await startBroker()
        let address = "\(broker.host):\(broker.port)"
        func gantry(_ arguments: String...) async throws -> (status: Int32, output: String) {
            try await runBuiltTool("gantry", arguments + ["--broker", address])
        }

        let enqueued = try await gantry("enqueue", "email.send", "--args", #"{"to":"ana@example.com"}"#, "--queue", "mail", "--json")
        #expect(enqueued.status == 0, "\(enqueued.output)")
        let id = try #require(try JSONDecoder().decode(JSONValue.self, from: Data(enqueued.output.utf8))["id"]?.stringValue)

        let stats = try await gantry("stats", "--json")
        let parsed = try JSONDecoder().decode(JSONValue.self, from: Data(stats.output.utf8))
        #expect(parsed["queues"]?["mail"]?["counts"]?["available"] == 1)

        #expect(try await gantry("pause", "mail").output == "queue mail paused\n")
        let table = try await gantry("queues")
        #expect(table.output.contains("QUEUE"))
        let mailRow = table.output.split(separator: "\n").first { $0.hasPrefix("mail ") } ?? ""
        #expect(mailRow.split(separator: " ").suffix(2) == ["yes", "-"], "the table shows the queue paused, without limits: \(table.output)")
        #expect(try await gantry("resume", "mail").status == 0)

        // A worker fails the job for good; the operator reads why and retries it.
        let worker = try await broker.connect()
        _ = try await reserve(worker, ["mail"])
        _ = try await worker.result("nack", ["id": .string(id), "error": ["message": "mailbox full", "kind": "SMTPError", "backtrace": ["smtp.py:9"]], "retry": false])
        let details = try await gantry("job", id)
        #expect(details.output.contains("dead"))
        #expect(details.output.contains("SMTPError: mailbox full"))
        #expect(details.output.contains("    smtp.py:9"))
        let dead = try await gantry("jobs", "--state", "dead")
        #expect(dead.output.contains("mailbox full"), "the list shows the last error: \(dead.output)")
        #expect(try await gantry("retry", id).output == "job \(id) is available again\n")
        #expect(try await gantry("jobs", "--state", "dead").output == "no jobs\n")
        #expect(try await gantry("jobs", "--state", "deadd").status == 64)

        // Bulk: every dead job of a queue comes back, a page at a time.
        for _ in 0..<3 {
            let job = try #require(try await enqueue(worker, ["type": "doomed", "queue": "bulk"]) as String?)
            _ = try await reserve(worker, ["bulk"])
            _ = try await worker.result("nack", ["id": .string(job), "error": ["message": "no"], "retry": false])
        }
        let bulk = try await gantry("retry", "--all-dead", "--queue", "bulk", "--json")
        #expect(bulk.output.contains(#""retried": 3"#), "\(bulk.output)")
        #expect(try await gantry("retry").status == 64, "an id or --all-dead is required")

        let waiting = try await gantry("enqueue", "report.build", "--delay-ms", "60000", "--json")
        let waitingID = try #require(try JSONDecoder().decode(JSONValue.self, from: Data(waiting.output.utf8))["id"]?.stringValue)
        #expect(try await gantry("cancel", waitingID).output == "job \(waitingID) cancelled\n")
        #expect(try await gantry("discard", waitingID).output == "job \(waitingID) discarded\n")
        let running = try await enqueue(worker, ["type": "report.build", "queue": "running"])
        _ = try await reserve(worker, ["running"])
        #expect(try await gantry("cancel", running).output == "job \(running) is running: its worker is told to stop it, and it will not be retried\n")
        #expect(try await gantry("job", running).output.contains("\ncancel requested 20"), "gantry job shows when")

        // Exit codes a script can act on.
        let missing = try await gantry("job", "424242")
        #expect(missing.status == 1)
        #expect(missing.output.contains("No job has id 424242"))
        #expect(try await gantry("enqueue", "x", "--args", "{not json").status == 64)
        let unreachable = try await runBuiltTool("gantry", ["stats", "--broker", "127.0.0.1:1"])
        #expect(unreachable.status == 3, "\(unreachable.output)")
    }
}
