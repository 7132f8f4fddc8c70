import Foundation
@testable import GantryBroker
import GantryProtocol
import GantryTesting
import Logging
import PostgresNIO
import Testing

/// Finding operations by what their globals hold stays an index scan however many there are.
@Suite(.deadline(.seconds(180))) struct OperationPlanTests {
    @Test func aLookupByGlobalAmong100000OperationsUsesTheIndex() async throws {
        try await TestPostgres.withMigratedDatabase { client, url in
            let logger = Logger(label: "operation-plan-test")
            try await client.withConnection { connection in
                try await connection.query("""
                    INSERT INTO gantry.operations (name, state, queue, globals, initial_globals, branches)
                    SELECT 'renewal', 'completed', 'default', jsonb_build_object('subscription_id', n, 'plan', 'pro'),
                           '{}', '{"main": [{"type": "renew"}]}'
                    FROM generate_series(1, 100000) AS n
                    """, logger: logger)
                try await connection.query("ANALYZE gantry.operations", logger: logger)
                let query = try OperationStore.listQuery(OperationsList.Params(globals: ["subscription_id": 7]))
                let rows = try await connection.query(PostgresQuery(unsafeSQL: "EXPLAIN (FORMAT JSON) " + query.sql, binds: query.binds), logger: logger)
                var plans: [JSONValue] = []
                for try await plan in rows.decode(JSONValue.self) { plans.append(plan) }
                let plan = try #require(plans.first?.arrayValue?.first?["Plan"])
                #expect(PlanTests.sequentialScans(of: "operations", in: plan) == 0, "\(plan)")
                #expect(Self.indexes(in: plan).contains("operations_globals"), "\(plan)")
            }
            let store = OperationStore(storage: Storage(client: client, pipelines: PostgresPipelines(url: url, logger: Logger(label: "operation-plan-test"))), logger: Logger(label: "operation-plan-test"))
            let found = try await store.list(OperationsList.Params(globals: ["subscription_id": 7]))
            #expect(found.operations.map(\.globals) == [["plan": "pro", "subscription_id": 7]])
        }
    }

    /// Every index a plan reads.
    static func indexes(in plan: JSONValue) -> Set<String> {
        var names: Set<String> = plan["Index Name"]?.stringValue.map { [$0] } ?? []
        for child in plan["Plans"]?.arrayValue ?? [] { names.formUnion(indexes(in: child)) }
        return names
    }
}
