import ChildProcesses
import Foundation
import GantryClient
import GantryProtocol
import GantryTesting
import Synchronization
import Testing

/// The Swift `Worker` and `gantry-worker` obey `workers.quiet` and `workers.stop` sent through the broker.
@Suite(.serialized, .deadline(.seconds(300))) struct SteeringTests {
    @Test func aQuietWorkerFinishesWhatItHoldsAndTakesNothingNew() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let address = "\(broker.host):\(broker.port)"
        let gantry = try GantryClient(url: address)
        let started = Mutex(0)
        let worker = try Worker(url: address, queues: ["q"], concurrency: 2, id: "quiet-me")
        worker.register("slow") { (_: JobContext<[String]>) in
            started.withLock { $0 += 1 }
            try await Task.sleep(for: .milliseconds(800))
        }
        let running = Task { try await worker.run() }
        let first = try await gantry.enqueue("slow", args: [String](), options: .init(queue: "q"))
        #expect(try await eventually { started.withLock { $0 } == 1 })

        #expect(try await gantry.call(WorkersQuiet.self, .init(id: "quiet-me")).workers == 1)
        #expect(try await eventually { try await gantry.job(id: first).state == .completed }, "it finished the job it held")
        #expect(worker.isQuiet)
        let later = try await gantry.enqueue("slow", args: [String](), options: .init(queue: "q"))
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await gantry.job(id: later).state == .available, "and took nothing new")
        // Quiet is not gone: it stays up (a supervisor would restart it into taking jobs) until it is stopped.
        let workers = try await gantry.call(WorkersList.self, NoParams()).workers
        #expect(workers.map(\.state) == [.quiet])
        worker.shutdown()
        try await running.value
    }

    @Test func aStoppedWorkerHandsItsJobsBackAndExits() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let address = "\(broker.host):\(broker.port)"
        let gantry = try GantryClient(url: address)
        let worker = try Worker(url: address, queues: ["q"], concurrency: 2, id: "stop-me")
        let started = Mutex(0)
        worker.register("forever") { (_: JobContext<[String]>) in
            started.withLock { $0 += 1 }
            try await Task.sleep(for: .seconds(600))
        }
        let running = Task { try await worker.run() }
        let ids = [try await gantry.enqueue("forever", args: [String](), options: .init(queue: "q")), try await gantry.enqueue("forever", args: [String](), options: .init(queue: "q"))]
        #expect(try await eventually { started.withLock { $0 } == 2 })

        #expect(try await gantry.call(WorkersStop.self, .init(all: true)).workers == 1)
        let stoppedWithin = try await ContinuousClock().measure { try await running.value }
        #expect(stoppedWithin < .seconds(5))
        for id in ids {
            let job = try await gantry.job(id: id)
            #expect(job.state == .available, "handed back for another worker")
            #expect(job.errors.last?.kind == "WorkerStopped")
        }
    }

    @Test func gantryWorkerStopsItsCommandsWhenTold() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let address = "\(broker.host):\(broker.port)"
        let gantry = try GantryClient(url: address)
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-stop-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: marker) }
        let process = try ChildProcess(
            executable: BrokerProcess.executable.deletingLastPathComponent().appendingPathComponent("gantry-worker").path,
            arguments: ["--broker", address, "--handler", "sleepy=touch \(marker.path); sleep 600"])
        defer { process.signal(SIGKILL); _ = process.waitBlocking(timeout: .seconds(5)) }

        let id = try await gantry.enqueue("sleepy", args: [String]())
        #expect(try await eventually { FileManager.default.fileExists(atPath: marker.path) })
        #expect(try await gantry.call(WorkersStop.self, .init(all: true)).workers == 1)
        #expect(await process.wait(timeout: .seconds(15)) == .exited(0), "gantry-worker exits, and says all went well")
        let job = try await gantry.job(id: id)
        #expect(job.state == .available)
        #expect(job.errors.last?.kind == "WorkerStopped")
    }
}

extension SteeringTests {
    @Test func aSwiftWorkerStopsAJobAnOperatorCancels() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let address = "\(broker.host):\(broker.port)"
        let gantry = try GantryClient(url: address)
        // Extends every second, so it hears of the cancellation within about a second.
        let worker = try Worker(url: address, queues: ["q"], concurrency: 1, lease: .seconds(3))
        let started = Mutex(0)
        worker.register("long") { (_: JobContext<[String]>) in
            started.withLock { $0 += 1 }
            try await Task.sleep(for: .seconds(600))
        }
        let running = Task { try await worker.run() }
        let id = try await gantry.enqueue("long", args: [String](), options: .init(queue: "q"))
        #expect(try await eventually { started.withLock { $0 } == 1 })
        #expect(try await gantry.call(JobsCancel.self, .init(id: id)).state == .reserved)
        #expect(try await eventually(timeout: .seconds(10)) { try await gantry.job(id: id).state == .cancelled })
        #expect(try await gantry.job(id: id).errors.last?.kind == "JobCancelled")
        #expect(started.withLock { $0 } == 1, "never retried")
        worker.shutdown()
        try await running.value
    }
}
