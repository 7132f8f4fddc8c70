import Foundation
import GantryBroker
import GantryProtocol
import GantryTesting
import Logging
import PostgresNIO
import Testing

/// Packages through real `gantryd` processes: started by cron, by events and by hand; reached by one event
/// beside other subscribers in one transaction; saved executions kept through cleanup; bad input refused.
@Suite(.deadline(.seconds(240))) struct PackageTests {
    struct RolledBack: Error {}

    /// One event reaches three subscriptions (a job, a package, one its filter leaves out) in one transaction:
    /// published from SQL and rolled back, nothing starts; committed, the job and the execution are there.
    @Test func oneEventReachesAJobAndAPackageAndLeavesOutTheFilteredOne() async throws {
        let (url, configuration) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let client = try await broker.connect()
        _ = try await client.result("packages.upsert", [
            "name": "invoice.close", "steps": ["invoice.total", "invoice.mail"], "config": ["currency": "EUR"], "queue": "billing",
        ])
        _ = try await client.result("subscriptions.upsert", [
            "name": "a-receipt", "event": "order.paid", "target": ["type": "receipt.send", "queue": "mail"],
        ])
        _ = try await client.result("subscriptions.upsert", [
            "name": "b-invoice", "event": "order.*", "target": ["package": "invoice.close", "config": ["currency": "USD"]],
        ])
        _ = try await client.result("subscriptions.upsert", [
            "name": "c-vip", "event": "order.paid", "filter": ["vip": true], "target": ["type": "vip.greet", "queue": "mail"],
        ])

        var logger = Logger(label: "package-test")
        logger.logLevel = .error
        let app = PostgresClient(configuration: configuration, backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await app.run() }
            defer { group.cancelAll() }
            do {
                try await app.withTransaction(logger: logger) { transaction in
                    try await transaction.query("SELECT gantry.publish('order.paid', '{\"order_id\": 1}')", logger: logger)
                    throw RolledBack()
                }
            } catch let error as PostgresTransactionError where error.closureError is RolledBack {}
        }
        #expect(try await client.result("events.list", [:])["events"] == [], "a rolled-back publish leaves no event")
        #expect(try await client.result("packages.executions", ["name": "invoice.close"])["executions"] == [], "and no execution")

        let published = try await client.result("events.publish", ["type": "order.paid", "payload": ["order_id": 2]])
        let triggered = try #require(published["triggered"]?.arrayValue)
        #expect(triggered.map { $0["subscription"]?.stringValue } == ["a-receipt", "b-invoice"], "the vip filter leaves c-vip out")
        #expect(triggered[1]["package"] == "invoice.close")
        let executionID = try #require(triggered[1]["operation_id"])

        let jobs = try await reserve(client, ["mail", "billing"], max: 10, waitMs: 5000)
        #expect(jobs.map { $0["type"]?.stringValue } == ["receipt.send", "invoice.total"])
        let step = try #require(jobs.last)
        #expect(step["package"] == ["name": "invoice.close", "config": ["currency": "USD"]], "the subscription's config override")
        #expect(step["operation"]?["id"] == executionID)
        #expect(step["operation"]?["globals"]?["event"]?["payload"] == ["order_id": 2])
        let event = try await client.result("events.get", ["id": try #require(published["id"])])
        #expect(event["triggered"]?[1]?["state"] == "running")
    }

    /// A package with a cron trigger (every second), an event trigger and manual runs, declared in the config
    /// file: each way starts an execution, marked with how.
    @Test func aPackageRunsByCronByEventAndByHand() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-\(UUID().uuidString).yml")
        defer { try? FileManager.default.removeItem(at: file) }
        try """
            database_url: "\(url)"
            packages:
              sync.crm:
                description: Pulls contacts from the CRM
                steps: [crm.pull, {parallel: [crm.merge, crm.index]}]
                config: {batch: 500}
                queue: crm
                triggers: {cron: "* * * * * *", events: [crm.changed]}
            """.write(to: file, atomically: true, encoding: .utf8)
        let broker = try await BrokerProcess(arguments: ["--config", file.path])
        let client = try await broker.connect()
        let package = try await client.result("packages.get", ["name": "sync.crm"])
        #expect(package["source"] == "config")
        #expect(package["next_run_at"] != nil, "an active package with a cron trigger has its next tick")

        #expect(try await eventually {
            let executions = try await client.result("packages.executions", ["name": "sync.crm"])["executions"]?.arrayValue ?? []
            return executions.contains { $0["trigger"] == "cron" }
        }, "a cron tick starts an execution")
        let published = try await client.result("events.publish", ["type": "crm.changed", "payload": ["contact": 9]])
        #expect(published["triggered"]?[0]?["package"] == "sync.crm")
        #expect(published["triggered"]?[0]?["subscription"] == nil, "the package's own trigger, no subscription")
        let run = try await client.result("packages.run", ["name": "sync.crm", "config": ["batch": 50]])
        _ = try await client.result("packages.upsert", [
            "name": "sync.crm", "steps": ["crm.pull"], "queue": "crm", "active": false, "config": ["batch": 500],
            "triggers": ["cron": "* * * * * *"],
        ])
        let executions = try await client.result("packages.executions", ["name": "sync.crm", "limit": 100])["executions"]?.arrayValue ?? []
        #expect(Set(executions.compactMap { $0["trigger"]?.stringValue }) == ["cron", "event", "manual"])
        let manual = try #require(executions.first { $0["id"] == run["id"] })
        #expect(manual["config"] == ["batch": 50])
        #expect(manual["steps"]?.arrayValue?.map { $0["type"]?.stringValue } == ["crm.pull", "crm.merge", "crm.index"],
                "its steps as it started with them, the parallel group's too")
        #expect(manual["steps"]?[1]?["member"] == 0 && manual["steps"]?[2]?["member"] == 1)

        // Inactive: no tick, no event, no run by hand starts it.
        let inactive = try await client.call("packages.run", ["name": "sync.crm"])
        #expect(inactive.errorCode == -32008)
        let count = executions.count
        try await Task.sleep(for: .milliseconds(1500))
        let quiet = try await client.result("events.publish", ["type": "crm.changed"])
        #expect(quiet["triggered"] == [])
        #expect(try await client.result("packages.executions", ["name": "sync.crm", "limit": 100])["executions"]?.arrayValue?.count == count)
    }

    /// A saved execution stays through cleanup, its steps' results with it; the unsaved one goes.
    @Test func aSavedExecutionSurvivesCleanup() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        _ = try await client.result("packages.upsert", ["name": "export", "steps": ["export.write"], "queue": "export"])
        var ids: [JSONValue] = []
        for _ in 0..<2 {
            ids.append(try #require(try await client.result("packages.run", ["name": "export"])["id"]))
            let job = try #require(try await reserve(client, ["export"], waitMs: 5000).first)
            #expect(try await client.result("ack", ["id": try #require(job["id"]), "result": ["file": "export.csv"]])["ok"] == true)
        }
        let saved = try await client.result("executions.save", ["id": ids[0], "name": "golden", "description": "known good"])
        #expect(saved["saved"]?["name"] == "golden")
        let taken = try await client.call("executions.save", ["id": ids[1], "name": "golden"])
        #expect(taken.error?.data?["field"] == "name", "one name per package")

        #expect(try await eventually { try await client.result("operations.get", ["id": ids[1]])["state"] == "completed" })
        let cleaned = try await client.result("cleanup", ["states": ["completed"], "older_than_ms": 0])
        #expect(cleaned["deleted_operations"] == 1)
        let left = try await client.result("packages.executions", ["name": "export"])["executions"]?.arrayValue ?? []
        #expect(left.map { $0["id"] } == [ids[0]])
        #expect(left.first?["steps"]?[0]?["result"] == ["file": "export.csv"], "the result outlives its job")
        let listed = try await client.result("executions.saved", [:])
        #expect(listed["executions"]?[0]?["saved"]?["description"] == "known good")
        _ = try await client.result("packages.delete", ["name": "export"])
        #expect(try await client.result("packages.executions", ["name": "export"])["executions"]?.arrayValue?.count == 1,
                "a deleted package's executions stay listed")
        #expect(try await client.call("packages.executions", ["name": "nothing"]).errorCode == -32002)
    }

    @Test func badPackagesAndTargetsAreRefusedNamingTheField() async throws {
        let (broker, _) = try await startBroker(["--max-args-bytes", "256"])
        let client = try await broker.connect()
        let cases: [(String, JSONValue, String)] = [
            ("subscriptions.upsert", ["name": "s", "event": "x", "target": ["package": "missing"]], "target.package"),
            ("subscriptions.upsert", ["name": "s", "event": "x", "filter": "paid", "target": ["type": "t"]], "filter"),
            ("packages.upsert", ["name": "p", "steps": ["a"], "config": [1, 2]], "config"),
            ("packages.upsert", ["name": "p", "steps": ["a"], "config": ["blob": .string(String(repeating: "x", count: 300))]], "config"),
            ("packages.upsert", ["name": "p", "steps": "a"], "steps"),
            ("packages.upsert", ["name": "p", "steps": [["type": "a", "retries": 3]]], "steps[0].retries"),
            ("packages.upsert", ["name": "p", "steps": ["a"], "triggers": ["cron": "61 * * * *"]], "triggers.cron"),
            ("packages.upsert", ["name": "p", "steps": ["a"], "triggers": ["timezone": "Mars/Olympus"]], "triggers.timezone"),
            ("packages.upsert", ["name": "p", "steps": ["a"], "triggers": ["events": ["a*b"]]], "triggers.events[0]"),
            ("packages.upsert", ["name": "p", "steps": ["a"], "triggers": ["hourly": true]], "triggers.hourly"),
            ("packages.run", ["name": "p", "config": "fast"], "config"),
            ("events.publish", ["type": "big", "payload": ["text": .string(String(repeating: "x", count: 300))]], "payload"),
        ]
        for (method, params, field) in cases {
            let answer = try await client.call(method, params)
            #expect(answer.errorCode == -32602, "\(method) \(params)")
            #expect(answer.error?.data?["field"] == .string(field), "\(method) \(params): \(String(describing: answer.error))")
        }
        _ = try await client.result("packages.upsert", ["name": "p", "steps": ["a"], "triggers": ["manual": false]])
        let byHand = try await client.call("packages.run", ["name": "p"])
        #expect(byHand.errorCode == -32008)
        #expect(byHand.error?.message.contains("triggers.manual") == true)
        #expect(try await client.call("packages.get", ["name": "nope"]).errorCode == -32002)
        #expect(try await client.call("executions.save", ["id": "999", "name": "x"]).errorCode == -32002)
    }
}
