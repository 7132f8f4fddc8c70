import Foundation
import GantryClient
import GantryProtocol
import GantryTesting
import Testing

@Suite(.deadline(.seconds(120))) struct WorkerHealthTests {
    /// `/live` and `/ready` for a supervisor's probes: ready while connected and reserving, not once quieted or
    /// stopping; and a stop that waits at most the drain timeout, then hands the running job back.
    @Test func healthEndpointsAndTheDrainTimeout() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let address = "\(broker.host):\(broker.port)"
        let gantry = try GantryClient(url: address)
        let worker = try Worker(url: address, queues: ["slow"], concurrency: 1, healthPort: 0, drainTimeout: .seconds(1))
        worker.register("sleep.long") { (_: JobContext<[Int]>) in try await Task.sleep(for: .seconds(60)) }
        let running = Task { try await worker.run() }
        defer { running.cancel() }
        #expect(try await eventually(timeout: .seconds(10)) { worker.healthPort != nil })
        let port = try #require(worker.healthPort)
        func probe(_ path: String) async throws -> Int { try await HTTPGet.fetch(host: "127.0.0.1", port: port, path: path).status }
        #expect(try await eventually(timeout: .seconds(10)) { try await probe("/ready") == 200 }, "ready once connected and reserving")
        #expect(try await probe("/live") == 200)
        #expect(try await probe("/other") == 404)

        let id = try await gantry.enqueue("sleep.long", args: [1], options: .init(queue: "slow"))
        #expect(try await eventually { try await gantry.job(id: id).state == .reserved })
        let asked = ContinuousClock.now
        worker.shutdown()
        #expect(try await eventually(timeout: .seconds(5)) { try await probe("/ready") == 503 }, "not ready while stopping")
        try await running.value
        let took = ContinuousClock.now - asked
        #expect(took < .seconds(10), "the stop waited \(took), past its one-second drain timeout")
        let job = try await gantry.job(id: id)
        #expect(job.state == .available, "the running job was handed back: \(job.state)")
        #expect(job.errors.last?.kind == "WorkerStopped")
    }
}
