import Foundation
@testable import GantryBroker
import GantryProtocol
import GantryTesting
import Logging
import PostgresNIO
import Testing

/// The hot statements are prepared once per connection, often while the tables are still empty; these check
/// that the plan PostgreSQL then uses beside a backlog (unanalyzed, as a fresh broker's is) scans no jobs
/// sequentially.
@Suite(.deadline(.seconds(180))) struct PlanTests {
    static let logger = Logger(label: "plan-test")

    /// Every node of a JSON plan that scans `relation` sequentially.
    static func sequentialScans(of relation: String, in plan: JSONValue) -> Int {
        var count = 0
        if plan["Node Type"] == "Seq Scan" && plan["Relation Name"] == .string(relation) { count += 1 }
        for child in plan["Plans"]?.arrayValue ?? [] { count += sequentialScans(of: relation, in: child) }
        return count
    }

    @Test func theClaimUsesIndexesBesideABacklogThatCameAfterItWasPrepared() async throws {
        try await TestPostgres.withMigratedDatabase { client, url in
            let storage = Storage(client: client, pipelines: PostgresPipelines(url: url, logger: Self.logger))
            let store = JobStore(storage: storage, brokerID: UUID(), logger: Self.logger)
            try await client.withConnection { connection in
                // Running the claim on the empty table prepares it on this connection, as on a new broker.
                let request = JobStore.ClaimRequest(sessionID: UUID(), max: 1, leaseMs: nil)
                for _ in 0..<6 {
                    #expect(try await store.claimStatement(queues: ["big"], requests: [request], defaultLeaseMs: 60_000, limits: nil, on: connection)[0].isEmpty)
                }
                for _ in 0..<3 { _ = try await store.insertJobs(Array(repeating: Enqueue.Params(type: "backlog", queue: "big"), count: 10_000)) }
                for _ in 0..<6 {
                    let claimed = try await store.claimStatement(queues: ["big"], requests: [request], defaultLeaseMs: 60_000, limits: nil, on: connection)
                    #expect(claimed[0].count == 1)
                }
                let rows = try await connection.query("""
                    EXPLAIN (FORMAT JSON) EXECUTE \(unescaped: ClaimStatement.name)(
                        '[{"request":0,"session_id":"\(unescaped: UUID().uuidString)","max":1}]', '{big}', '{-1}', false, 1,
                        '\(unescaped: UUID().uuidString)', 60000, '{}')
                    """, logger: Self.logger)
                var plans: [JSONValue] = []
                for try await text in rows.decode(String.self) {
                    plans.append(try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)))
                }
                let plan = try #require(plans.first?.arrayValue?.first?["Plan"])
                #expect(Self.sequentialScans(of: "jobs", in: plan) == 0, "\(plan)")
            }
        }
    }
}
