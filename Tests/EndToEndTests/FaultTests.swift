import ChildProcesses
import Foundation
import GantryBroker
import GantryProtocol
import GantryTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Faults injected for real — PostgreSQL stopped, a broker or a worker killed — while jobs flow. Each test
/// counts what producers were told was stored and checks that every such job is still there: lost must be 0.
@Suite(.deadline(.seconds(300))) struct FaultTests {
    /// Enqueues until told to stop, keeping the ids the broker acknowledged and counting refusals.
    final class Producer: Sendable {
        let acknowledged = Collected<String>()
        let refused = Collected<Int>()
        let stop = Collected<Bool>()

        /// Runs `connections` producers on the broker until `stop` is set.
        func run(on broker: BrokerProcess, connections: Int = 4) async {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<connections {
                    group.addTask {
                        guard let client = try? await broker.connect() else { return }
                        await self.run(client)
                    }
                }
            }
        }

        func run(_ client: LineClient) async {
            while stop.all.isEmpty {
                guard let response = try? await client.call("enqueue", ["type": "precious"], timeout: .seconds(20)) else { return }
                if let id = response.result?["id"]?.stringValue {
                    acknowledged.append(id)
                } else {
                    refused.append(response.errorCode ?? 0)
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
        }
    }

    @Test func postgresStoppedAndRestartedUnderLoadLosesNothing() async throws {
        let postgres = try await TestPostgres.privateCluster()
        defer {
            postgres.stop()
            try? FileManager.default.removeItem(at: postgres.directory)
        }
        let broker = try await BrokerProcess(databaseURL: postgres.url(database: "gantry"), extraArguments: ["--storage-timeout-ms", "1000"])
        let producer = Producer()
        let producing = Task { await producer.run(on: broker) }
        while producer.acknowledged.all.count < 200 { try await Task.sleep(for: .milliseconds(20)) }
        postgres.stop()
        let stoppedAt = ContinuousClock.now
        let acknowledgedBefore = producer.acknowledged.all.count
        // While PostgreSQL is away, requests are refused quickly with the retryable code, not left hanging.
        let probe = try await broker.connect()
        let refusal = try await probe.call("stats", timeout: .seconds(5))
        #expect(refusal.errorCode == -32004, "\(refusal)")
        #expect(refusal.error?.data?["retryable"] == true)
        #expect(refusal.error?.data?["applied"] == false, "nothing was done, so clients may resend on their own")
        // Probes see it too: still alive, not ready.
        #expect(try await broker.get("/live").status == 200)
        let notReady = try await broker.get("/ready")
        #expect(notReady.status == 503)
        #expect(notReady.body.hasPrefix("database unavailable"), "\(notReady.body)")
        try await Task.sleep(for: .seconds(1))

        _ = try await postgres.start()
        let restartedAt = ContinuousClock.now
        // Recovery: until the broker answers a request that needs the database again.
        while try await probe.call("stats", timeout: .seconds(5)).error != nil && ContinuousClock.now - restartedAt < .seconds(30) {
            try await Task.sleep(for: .milliseconds(10))
        }
        let recovery = ContinuousClock.now - restartedAt
        #expect(try await broker.get("/ready") == (200, "ready\n"))
        try await Task.sleep(for: .milliseconds(300))
        producer.stop.append(true)
        await producing.value

        let ids = producer.acknowledged.all
        var lost = 0
        for id in ids where try await storedState(of: id, on: probe) == nil { lost += 1 }
        print("postgres restart: \(ids.count) enqueues acknowledged, \(producer.refused.all.count) refused with \(Set(producer.refused.all)), outage \(restartedAt - stoppedAt), serving again \(recovery) after the restart, lost \(lost)")
        #expect(lost == 0)
        #expect(ids.count > acknowledgedBefore, "enqueues resumed after the restart")
        #expect(Set(producer.refused.all).isSubset(of: [-32004]), "only storage-unavailable refusals")
        #expect(recovery < .seconds(15))
    }

    @Test func aDeadBrokersLeasesAreRecoveredByAnother() async throws {
        let (doomed, url) = try await startBroker(["--broker-timeout-ms", "2000"])
        let survivor = try await BrokerProcess(databaseURL: url, extraArguments: ["--broker-timeout-ms", "2000"])
        let worker = try await doomed.connect()
        let ids = try await (0..<3).asyncMap { _ in try await enqueue(worker, ["type": "held"]) }
        #expect(try await reserve(worker, ["default"], max: 3, leaseMs: 600_000).count == 3)

        doomed.signal(SIGKILL)
        let killedAt = ContinuousClock.now
        let rescuer = try await survivor.connect()
        var recovered: [String] = []
        while recovered.count < 3 && ContinuousClock.now - killedAt < .seconds(20) {
            recovered += try await reserve(rescuer, ["default"], max: 3, waitMs: 1000).compactMap { $0["id"]?.stringValue }
        }
        let recovery = ContinuousClock.now - killedAt
        print("broker death: 3 leased jobs recovered by the other broker \(recovery) after kill -9 (broker timeout 2 s)")
        #expect(Set(recovered) == Set(ids))
        #expect(recovery < .seconds(10), "recovered well before the 10-minute lease would have run out")
        let details = try await rescuer.result("jobs.get", ["id": .string(ids[0])])
        #expect(details["errors"]?[0]?["reason"] == "broker_lost")
    }

    /// Works jobs until stopped, acking each; counts completions per id to find duplicates.
    final class Workers: Sendable {
        let delivered = Collected<String>()
        let completed = Collected<String>()
        let stop = Collected<Bool>()

        func run(on brokers: [BrokerProcess], perBroker: Int = 2) async {
            await withTaskGroup(of: Void.self) { group in
                for broker in brokers {
                    for _ in 0..<perBroker {
                        group.addTask {
                            guard let worker = try? await broker.connect() else { return }
                            while self.stop.all.isEmpty {
                                guard let jobs = try? await reserve(worker, ["default"], max: 5, waitMs: 200) else { return }
                                for job in jobs {
                                    guard let id = job["id"]?.stringValue else { continue }
                                    self.delivered.append(id)
                                    if (try? await worker.result("ack", ["id": .string(id)])) != nil { self.completed.append(id) }
                                }
                            }
                        }
                    }
                }
            }
        }

        /// Waits until the broker reports nothing left to do in the default queue.
        static func waitUntilDrained(_ client: LineClient, timeout: Duration = .seconds(30)) async throws {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                let counts = try await client.result("stats")["queues"]?["default"]?["counts"]
                if counts?["available"] == 0, counts?["reserved"] == 0, counts?["scheduled"] == 0 { return }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    @Test func killNineUnderLoadThenRestartLosesNothing() async throws {
        let (broker, url) = try await startBroker(["--broker-timeout-ms", "2000"])
        let producer = Producer()
        let workers = Workers()
        let producing = Task { await producer.run(on: broker) }
        let working = Task { await workers.run(on: [broker]) }
        while workers.completed.all.count < 100 { try await Task.sleep(for: .milliseconds(20)) }
        broker.signal(SIGKILL)
        let killedAt = ContinuousClock.now
        producer.stop.append(true)
        await producing.value
        try await broker.waitForExit()

        let restarted = try await BrokerProcess(databaseURL: url, extraArguments: ["--broker-timeout-ms", "2000"])
        let restartedIn = ContinuousClock.now - killedAt
        let resumed = Task { await workers.run(on: [restarted]) }
        let client = try await restarted.connect()
        try await Workers.waitUntilDrained(client)
        workers.stop.append(true)
        await working.value
        await resumed.value

        let completed = Set(workers.completed.all)
        var lost = 0
        for id in Set(producer.acknowledged.all) where !completed.contains(id) {
            if try await storedState(of: id, on: client) != "completed" { lost += 1 }
        }
        let deliveries = workers.delivered.all
        print("kill -9 under load then restart: \(producer.acknowledged.all.count) acknowledged, \(completed.count) completed, \(deliveries.count - Set(deliveries).count) delivered twice, restarted in \(restartedIn), lost \(lost)")
        #expect(lost == 0)
    }

    @Test func killingOneOfTwoBrokersUnderLoadLosesNothing() async throws {
        let (doomed, url) = try await startBroker(["--broker-timeout-ms", "2000"])
        let survivor = try await BrokerProcess(databaseURL: url, extraArguments: ["--broker-timeout-ms", "2000"])
        let producer = Producer()
        let workers = Workers()
        let producing = Task { await producer.run(on: doomed, connections: 2) }
        let producingElsewhere = Task { await producer.run(on: survivor, connections: 2) }
        let working = Task { await workers.run(on: [doomed, survivor]) }
        while workers.completed.all.count < 100 { try await Task.sleep(for: .milliseconds(20)) }

        doomed.signal(SIGKILL)
        try await Task.sleep(for: .milliseconds(500))
        producer.stop.append(true)
        await producing.value
        await producingElsewhere.value
        // Let the survivor's workers drain everything, including what the dead broker's workers held.
        let client = try await survivor.connect()
        try await Workers.waitUntilDrained(client)
        workers.stop.append(true)
        await working.value

        let acknowledged = Set(producer.acknowledged.all)
        let completions = workers.completed.all
        let completedSet = Set(completions)
        var lost = 0
        for id in acknowledged where !completedSet.contains(id) {
            if try await storedState(of: id, on: client) != "completed" { lost += 1 }
        }
        let deliveries = workers.delivered.all
        print("broker kill under load: \(acknowledged.count) acknowledged, \(completions.count) acks by workers, \(deliveries.count - Set(deliveries).count) delivered twice, lost \(lost)")
        #expect(lost == 0)
        #expect(completions.count == completedSet.count, "no job was acked twice")
    }

    @Test func aWorkerKilledMidJobHandsItsJobBackAtOnce() async throws {
        let (broker, _) = try await startBroker()
        let producer = try await broker.connect()
        let id = try await enqueue(producer, ["type": "long"])
        // A worker in its own process, so it can be killed for real.
        let script = """
            import json, socket, sys, time
            s = socket.create_connection(("\(broker.host)", \(broker.port))); f = s.makefile("rb")
            s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"reserve","params":{"queues":["default"],"lease_ms":600000}}\\n')
            print(json.loads(f.readline())["result"]["jobs"][0]["id"], flush=True)
            time.sleep(60)
            """
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("worker-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let worker = try ChildProcess(executable: "/usr/bin/env", arguments: ["python3", "-c", script], standardOutput: .file(output.path))
        defer { worker.signal(SIGKILL); _ = worker.waitBlocking(timeout: .seconds(5)) }
        let deadline = ContinuousClock.now + .seconds(20)
        while (try? String(contentsOf: output, encoding: .utf8))?.contains(id) != true && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try String(contentsOf: output, encoding: .utf8).contains(id), "the worker reserved the job")

        worker.signal(SIGKILL)
        let killedAt = ContinuousClock.now
        let jobs = try await reserve(producer, ["default"], waitMs: 10_000)
        let recovery = ContinuousClock.now - killedAt
        print("worker kill -9: job back in \(recovery)")
        #expect(jobs.first?["id"]?.stringValue == id)
        #expect(jobs.first?["attempt"] == 2)
        #expect(recovery < .seconds(3), "put back when the connection dropped, not when the lease ran out")
    }

    @Test func sigtermUnderLoadLosesNothing() async throws {
        let (broker, url) = try await startBroker(["--drain-grace-ms", "3000"])
        let producer = Producer()
        let producing = Task { await producer.run(on: broker) }
        let completed = Collected<String>()
        let working = Task {
            guard let worker = try? await broker.connect() else { return }
            while let jobs = try? await reserve(worker, ["default"], max: 5, waitMs: 200) {
                for job in jobs {
                    guard let id = job["id"]?.stringValue else { continue }
                    if (try? await worker.result("ack", ["id": .string(id)])) != nil { completed.append(id) }
                }
            }
        }
        while producer.acknowledged.all.count < 200 { try await Task.sleep(for: .milliseconds(20)) }
        broker.signal(SIGTERM)
        #expect(try await broker.waitForExit(timeout: .seconds(20)) == 0)
        producer.stop.append(true)
        await producing.value
        await working.value

        let restarted = try await BrokerProcess(databaseURL: url)
        let client = try await restarted.connect()
        var lost = 0
        for id in producer.acknowledged.all where try await storedState(of: id, on: client) == nil { lost += 1 }
        let stats = try await client.result("stats")
        let remaining = stats["queues"]?["default"]?["counts"]?["available"]?.intValue ?? 0
        print("sigterm under load: \(producer.acknowledged.all.count) acknowledged, \(completed.all.count) completed before exit, \(remaining) left available, lost \(lost)")
        #expect(lost == 0)
        #expect(Int64(completed.all.count) + remaining == Int64(producer.acknowledged.all.count), "every acknowledged job is completed or still waiting")
    }

    @Test func aClientThatNeverFinishesALineIsDropped() async throws {
        let (broker, _) = try await startBroker(["--partial-line-timeout-ms", "500"])
        let slow = try await broker.connect()
        try await slow.sendRaw(Data(#"{"jsonrpc":"2.0","id":1,"method":"st"#.utf8))
        #expect(try await slow.nextLine(timeout: .seconds(5)) == nil, "closed after the partial-line timeout")
        // Silence between lines is fine: a long-polling worker says nothing for a long time.
        let quiet = try await broker.connect()
        try await Task.sleep(for: .milliseconds(800))
        #expect(try await quiet.call("stats").error == nil)
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
