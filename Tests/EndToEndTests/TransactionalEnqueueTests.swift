import Foundation
import GantryBroker
import GantryProtocol
import GantryTesting
import Logging
import PostgresNIO
import Testing

/// `gantry.enqueue(...)` called by an application inside its own transaction: the job exists, and waiting
/// workers wake, only if that transaction commits.
@Suite(.deadline(.seconds(300))) struct TransactionalEnqueueTests {
    struct RolledBack: Error {}

    @Test func aJobEnqueuedInsideATransactionExistsOnlyIfItCommits() async throws {
        let (url, configuration) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let worker = try await broker.connect()
        let observer = try await broker.connect()
        var logger = Logger(label: "outbox-test")
        logger.logLevel = .error
        let app = PostgresClient(configuration: configuration, backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await app.run() }
            defer { group.cancelAll() }

            // Rolled back: no job.
            var rolledBackID = ""
            do {
                try await app.withTransaction(logger: logger) { transaction in
                    let rows = try await transaction.query(
                        "SELECT gantry.enqueue('outbox.mail', '{\"order\": 1}', 'outbox')", logger: logger)
                    rolledBackID = try await rows.decode(String.self).first(where: { _ in true }) ?? ""
                    throw RolledBack()
                }
            } catch let error as PostgresTransactionError where error.closureError is RolledBack {}
            #expect(!rolledBackID.isEmpty)
            #expect(try await observer.call("jobs.get", ["id": .string(rolledBackID)]).errorCode == -32002)

            // Committed: visible and handed to the waiting worker only after the commit.
            try await worker.sendRequest("reserve", ["queues": ["outbox"], "wait_ms": 20_000], id: 1)
            try await Task.sleep(for: .milliseconds(200))
            let id = try await app.withTransaction(logger: logger) { transaction -> String in
                let rows = try await transaction.query(
                    "SELECT gantry.enqueue(type => 'outbox.mail', args => '{\"order\": 2.0, \"and\": [1e21]}', queue => 'outbox', tags => ARRAY['shop'])",
                    logger: logger)
                let id = try await rows.decode(String.self).first(where: { _ in true }) ?? ""
                #expect(try await observer.call("jobs.get", ["id": .string(id)]).errorCode == -32002, "not visible before the commit")
                try await Task.sleep(for: .milliseconds(300))
                return id
            }
            let committed = ContinuousClock.now
            let response = try await worker.response(id: 1, timeout: .seconds(25))
            let woke = ContinuousClock.now - committed
            let job = response.result?["jobs"]?[0]
            #expect(job?["id"]?.stringValue == id)
            // Spelled as the SQL caller wrote it: members in order, `2.0` and `1e21` as written.
            #expect(try job?["args"].map { try JSONWriter.string($0) } == #"{"order":2.0,"and":[1e21]}"#)
            #expect(try await observer.result("jobs.get", ["id": .string(id)])["tags"] == ["shop"])
            print("transactional enqueue: the waiting worker had the job \(woke) after the commit")

            // A delayed job, and the function's own checks (errors come with the rows, so read them).
            func enqueueFromSQL(_ call: String) async throws -> String {
                let rows = try await app.query(PostgresQuery(unsafeSQL: "SELECT \(call)"), logger: logger)
                return try await rows.decode(String.self).first(where: { _ in true }) ?? ""
            }
            let laterID = try await enqueueFromSQL("gantry.enqueue('outbox.later', run_at => now() + interval '1 hour')")
            #expect(try await observer.result("jobs.get", ["id": .string(laterID)])["state"] == "scheduled")
            for (call, complaint) in [("gantry.enqueue('x', queue => 'no spaces allowed')", "queue must be"),
                                      ("gantry.enqueue('x', priority => 0)", "priority must be between 1"),
                                      ("gantry.enqueue('')", "type must be")] {
                let error = await #expect(throws: PSQLError.self) { _ = try await enqueueFromSQL(call) }
                #expect(error?.serverInfo?[.message]?.contains(complaint) == true, "\(call)")
                #expect(error?.serverInfo?[.sqlState] == "22023")
            }
        }
    }
}
