import Foundation
@testable import GantryBroker
import GantryProtocol
import GantryTesting
import Logging
import PostgresNIO
import Testing

/// The libpq pipelines the hot statements run on, against the suite's real PostgreSQL: failures stay with their
/// statement, a connection PostgreSQL drops is replaced, and no connection at all is told apart from a lost one.
@Suite(.deadline(.seconds(120))) struct PipelineTests {
    static let logger = Logger(label: "pipeline-test")

    func withStore(_ body: @Sendable @escaping (JobStore, PostgresPipelines, PostgresClient) async throws -> Void) async throws {
        try await TestPostgres.withMigratedDatabase { client, url in
            let pipelines = PostgresPipelines(url: url, logger: Self.logger)
            let store = JobStore(storage: Storage(client: client, pipelines: pipelines), brokerID: UUID(), logger: Self.logger)
            try await body(store, pipelines, client)
            await pipelines.close()
        }
    }

    /// The hot statements' backends, told apart by the application name the pipelines give them.
    static func pipelineBackends(_ client: PostgresClient) async throws -> Int {
        let rows = try await client.query("""
            SELECT count(*)::int8 FROM pg_stat_activity WHERE application_name = 'gantryd' AND datname = current_database()
            """, logger: logger)
        for try await count in rows.decode(Int64.self) { return Int(count) }
        return 0
    }

    @Test func aRefusedStatementFailsAloneAmongOthersInFlight() async throws {
        try await withStore { store, pipelines, _ in
            let ids = try await store.insertJobs((0..<20).map { Enqueue.Params(type: "t\($0)", queue: "q") }).map(\.id)
            try await withThrowingTaskGroup(of: (String, Result<String?, PipelineError>).self) { group in
                for id in ids + ["not a number"] {
                    group.addTask {
                        do {
                            let rows = try await pipelines.execute(JobByIDStatement.pipelined, [id])
                            return (id, .success(rows.count == 1 ? rows.string(0, 1) : nil))
                        } catch let error as PipelineError {
                            return (id, .failure(error))
                        }
                    }
                }
                for try await (id, outcome) in group {
                    switch (id, outcome) {
                    case ("not a number", .failure(.statementFailed(let refusal))):
                        #expect(refusal.sqlState == "22P02", "\(refusal)")
                    case (_, .success(let type)):
                        #expect(type == "t\(ids.firstIndex(of: id)!)")
                    default:
                        Issue.record("\(id): \(outcome)")
                    }
                }
            }
            #expect(try await store.job(id: Int64(ids[0])!)?.type == "t0")
        }
    }

    /// `jobs.get` reads binary rows from libpq, `jobs.list` PostgresNIO's: a job reads the same through both, at
    /// every stage of its life (absent columns absent, not null; errors, tags, result and spelled numbers kept).
    @Test func aJobReadsTheSameThroughBothDrivers() async throws {
        try await withStore { store, _, _ in
            let params = try GantryJSON.makeDecoder().decode(Enqueue.Params.self, from: Data(#"""
                {"type": "t", "queue": "q", "args": {"z": 1.0, "a": [1e21, "\\ \"", null]}, "tags": ["x", "y \"z\"", "{}", "a,b"],
                 "meta": {"k": -0.0}, "max_attempts": 3, "timeout_ms": 5000}
                """#.utf8))
            let id = try #require(Int64(try await store.insertJobs([params])[0].id))
            func same(_ stage: String) async throws {
                let listed = try await store.listJobs(JobStore.JobFilter(), limit: 1).first
                let got = try await store.job(id: id)
                #expect(got != nil && got == listed, "\(stage): \(String(describing: got)) against \(String(describing: listed))")
                #expect(got?.result == nil || stage == "completed", "\(stage): \(String(describing: got?.result))")
            }
            try await same("available")
            let session = UUID()
            let request = JobStore.ClaimRequest(sessionID: session, max: 1, leaseMs: nil)
            #expect(try await store.claimJobsTogether(queues: ["q"], requests: [request], defaultLeaseMs: 60_000)[0].first?.args == params.args)
            try await same("reserved")
            _ = try await store.failJob(id: id, sessionID: session, failure: .nacked(Nack.Failure(message: "boom"), workerID: "w"),
                                        outcome: .retry(afterMs: 0))
            try await same("retried")
            _ = try await store.claimJobsTogether(queues: ["q"], requests: [request], defaultLeaseMs: 60_000)
            #expect(try await store.completeJobs([JobStore.Completion(id: id, sessionID: session, result: ["n": 2.50])]) == [.init(held: true, cancelRequested: false)])
            try await same("completed")
        }
    }

    @Test func aConnectionPostgreSQLClosesIsReplacedBeforeTheNextRequest() async throws {
        try await withStore { store, _, client in
            let id = try #require(Int64(try await store.insertJobs([Enqueue.Params(type: "kept", queue: "q")])[0].id))
            #expect(try await store.job(id: id)?.type == "kept")
            #expect(try await Self.pipelineBackends(client) >= 1)
            try await client.query("""
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE application_name = 'gantryd' AND datname = current_database()
                """, logger: Self.logger)
            #expect(try await eventually(timeout: .seconds(10)) { try await Self.pipelineBackends(client) == 0 })
            // The idle connection's thread saw it close: the next request opens a new one rather than failing.
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await store.job(id: id)?.type == "kept")
            let reserved = try await store.claimJobsTogether(
                queues: ["q"], requests: [JobStore.ClaimRequest(sessionID: UUID(), max: 1, leaseMs: nil)], defaultLeaseMs: 60_000)
            #expect(reserved[0].map(\.type) == ["kept"])
        }
    }

    @Test func noPostgreSQLAtAllIsUnavailableNotLost() async throws {
        let pipelines = PostgresPipelines(url: "postgres://postgres@127.0.0.1:1/nowhere", logger: Self.logger)
        do {
            _ = try await pipelines.execute(JobByIDStatement.pipelined, ["1"])
            Issue.record("a statement ran without a database")
        } catch let error as PipelineError {
            guard case .unavailable = error else { Issue.record("\(error)"); return }
            let answer = Broker.describe(error, logger: Self.logger, method: "jobs.get")
            #expect(answer.code == GantryErrorCode.storageUnavailable.rawValue)
            #expect(answer.data?["applied"] == .bool(false), "nothing was sent, so the client may retry: \(answer)")
        }
        await pipelines.close()
    }
}
