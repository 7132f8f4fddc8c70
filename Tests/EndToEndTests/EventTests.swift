import Foundation
import GantryBroker
import GantryProtocol
import GantryTesting
import Logging
import PostgresNIO
import Testing

/// Events through real `gantryd` processes: published from SQL inside an application's transaction, from the
/// config file's subscriptions, with no worker connected, and refused when they cannot be.
@Suite(.deadline(.seconds(240))) struct EventTests {
    struct RolledBack: Error {}

    @Test func anEventPublishedInsideATransactionStartsNothingUnlessItCommits() async throws {
        let (url, configuration) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let client = try await broker.connect()
        _ = try await client.result("subscriptions.upsert", [
            "name": "receipts", "event": "order.*", "filter": ["paid": true], "target": ["type": "receipt.send", "queue": "mail"],
        ])
        _ = try await client.result("subscriptions.upsert", [
            "name": "fulfilment", "event": "order.paid",
            "target": ["operation": ["name": "fulfil", "queue": "warehouse", "branches": ["main": ["pick.items", "ship"]]]],
        ])
        var logger = Logger(label: "publish-test")
        logger.logLevel = .error
        let app = PostgresClient(configuration: configuration, backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await app.run() }
            defer { group.cancelAll() }
            do {
                try await app.withTransaction(logger: logger) { transaction in
                    try await transaction.query("SELECT gantry.publish('order.paid', '{\"order_id\": 1, \"paid\": true}')", logger: logger)
                    throw RolledBack()
                }
            } catch let error as PostgresTransactionError where error.closureError is RolledBack {}
            #expect(try await client.result("events.list", [:])["events"] == [], "a rolled-back publish leaves no event")
            #expect(try await reserve(client, ["mail", "warehouse"], max: 10).isEmpty, "and no job")

            // Committed, with no worker connected: the jobs wait, and a worker that connects later has them.
            try await app.withTransaction(logger: logger) { transaction in
                try await transaction.query("SELECT gantry.publish('order.paid', '{\"order_id\": 2.50, \"paid\": true}', key => 'order-2')", logger: logger)
                return ()
            }
        }
        let worker = try await broker.connect()
        let jobs = try await reserve(worker, ["mail", "warehouse"], max: 10, waitMs: 5000)
        #expect(jobs.map { $0["type"]?.stringValue } == ["receipt.send", "pick.items"])
        #expect(try jobs.first?["args"].map { try JSONWriter.string($0) } == #"{"order_id":2.50,"paid":true}"#, "the payload as published")
        #expect(jobs.last?["operation"]?["globals"]?["event"]?["type"] == "order.paid")
        let again = try await client.result("events.publish", ["type": "order.paid", "payload": ["order_id": 2], "key": "order-2"])
        #expect(again["duplicate"] == true, "the key published from SQL deduplicates the RPC publish too")
    }

    @Test func theConfigFilesSubscriptionsApplyOnStartAndBadOnesAreRefused() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-\(UUID().uuidString).yml")
        defer { try? FileManager.default.removeItem(at: file) }
        try """
            database_url: "\(url)"
            max_args_bytes: 64
            subscriptions:
              audit:
                event: "*"
                target: {type: audit.write, queue: audit, args: {from: config}}
            """.write(to: file, atomically: true, encoding: .utf8)
        let broker = try await BrokerProcess(arguments: ["--config", file.path])
        let client = try await broker.connect()
        let listed = try await client.result("subscriptions.list")
        #expect(listed["subscriptions"]?[0]?["name"] == "audit")
        #expect(listed["subscriptions"]?[0]?["source"] == "config")
        let published = try await client.result("events.publish", ["type": "user.signed_up"])
        #expect(published["triggered"]?[0]?["subscription"] == "audit")
        let job = try #require(try await reserve(client, ["audit"]).first)
        #expect(job["args"] == ["from": "config"], "the subscription's own args, not the payload")

        let big = try await client.call("events.publish", ["type": "big", "payload": ["text": .string(String(repeating: "x", count: 100))]])
        #expect(big.errorCode == -32602)
        #expect(big.error?.data?["field"] == "payload")
        #expect(big.error?.message.contains("max_args_bytes") == true, "\(big)")

        try """
            database_url: "\(url)"
            subscriptions:
              broken:
                event: order.paid
                filter: [1]
                target: {type: x}
            """.write(to: file, atomically: true, encoding: .utf8)
        let refused = try await runGantryd(["--config", file.path])
        #expect(refused.status != 0)
        #expect(refused.output.contains("subscription broken is not valid") && refused.output.contains("filter"), "\(refused.output)")
    }
}
