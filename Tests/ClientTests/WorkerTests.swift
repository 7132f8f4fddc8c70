import ChildProcesses
import Foundation
import GantryClient
import GantryProtocol
import GantryTesting
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

struct Boom: Error, CustomStringConvertible {
    var description: String { "the SMTP server said no" }
}

@Suite(.deadline(.seconds(300))) struct WorkerTests {
    @Test func aSwiftWorkerCompletesRetriesAndBuriesJobs() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let address = "\(broker.host):\(broker.port)"
        let gantry = try GantryClient(url: address)
        let delivered = Mutex<[String]>([])
        let worker = try Worker(url: address, queues: ["mail"], concurrency: 4, id: "test-worker")
        worker.register("email.send") { (job: JobContext<Email>) in
            if job.args.to == "fail@example.com" { throw Boom() }
            if job.args.to == "nobody" { throw PermanentFailure("no such mailbox") }
            delivered.withLock { $0.append(job.args.to) }
        }
        let running = Task { try await worker.run() }

        var good: [String] = []
        for index in 0..<20 {
            good.append(try await gantry.enqueue("email.send", args: Email(to: "user\(index)@example.com", subject: "hi"), options: .init(queue: "mail")))
        }
        let flaky = try await gantry.enqueue("email.send", args: Email(to: "fail@example.com", subject: "hi"), options: .init(queue: "mail"))
        let hopeless = try await gantry.enqueue("email.send", args: Email(to: "nobody", subject: "hi"), options: .init(queue: "mail"))
        let undecodable = try await gantry.enqueue("email.send", args: ["not": "an email"], options: .init(queue: "mail"))

        #expect(try await eventually {
            let counts = try await gantry.stats().queues["mail"]?.counts
            return counts?["completed"] == 20 && counts?["dead"] == 2 && counts?["scheduled"] == 1
        })
        #expect(delivered.withLock { $0.count } == 20)
        for id in good { #expect(try await gantry.job(id: id).state == .completed) }
        let retried = try await gantry.job(id: flaky)
        #expect(retried.state == .scheduled)
        #expect(retried.errors.first?.message == "the SMTP server said no")
        #expect(retried.errors.first?.kind == "Boom")
        #expect(retried.errors.first?.worker == "test-worker")
        #expect(try await gantry.job(id: hopeless).state == .dead)
        let bad = try await gantry.job(id: undecodable)
        #expect(bad.state == .dead)
        #expect(bad.errors.first?.message.contains("do not decode") == true)
        #expect(try await gantry.stats().broker.workers == 1, "the worker announced itself in hello")

        worker.shutdown()
        try await running.value
    }

    @Test func aSwiftWorkerExtendsTheLeasesOfLongJobs() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let address = "\(broker.host):\(broker.port)"
        let gantry = try GantryClient(url: address)
        // A 6-second lease, extended every 2 seconds, for a job that takes 10 (room for a loaded machine's stalls).
        let worker = try Worker(url: address, queues: ["slow"], concurrency: 1, lease: .seconds(6))
        let runs = Atomic<Int>(0)
        worker.register("slow.job") { (_: JobContext<[Int]>) in
            runs.add(1, ordering: .relaxed)
            try await Task.sleep(for: .seconds(10))
        }
        let running = Task { try await worker.run() }
        let id = try await gantry.enqueue("slow.job", args: [1], options: .init(queue: "slow"))
        #expect(try await eventually(timeout: .seconds(40)) { try await gantry.job(id: id).state == .completed })
        #expect(runs.load(ordering: .relaxed) == 1, "the lease never ran out, so the job ran once")
        #expect(try await gantry.job(id: id).errors.isEmpty)
        worker.shutdown()
        try await running.value
    }

    @Test func gantryWorkerRunsCommandsAndMapsTheirExits() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let gantry = try GantryClient(url: "\(broker.host):\(broker.port)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-worker-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("handler.sh")
        try #"""
            #!/bin/sh
            input=$(cat)
            case "$GANTRY_JOB_TYPE" in
              echo) printf '{"stdin":%s,"attempt":%s,"args":%s}\n' "$input" "$GANTRY_JOB_ATTEMPT" "$GANTRY_JOB_ARGS" ;;
              flaky) echo "warming up" >&2; echo "disk full on attempt $GANTRY_JOB_ATTEMPT" >&2; exit 1 ;;
              hopeless) echo "the input is nonsense" >&2; exit 65 ;;
              slow) sleep 30 ;;
            esac
            """#.write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o755)

        let log = directory.appendingPathComponent("worker.log")
        let worker = try ChildProcess(
            executable: BrokerProcess.executable.deletingLastPathComponent().appendingPathComponent("gantry-worker").path,
            arguments: ["--broker", "\(broker.host):\(broker.port)", "--queue", "cmd", "--concurrency", "4", "--timeout-ms", "1000"]
                + ["echo", "flaky", "hopeless", "slow"].flatMap { ["--handler", "\($0)=\(script.path)"] },
            standardOutput: .file(log.path), standardError: .standardOutput)
        defer { worker.signal(SIGKILL); _ = worker.waitBlocking(timeout: .seconds(5)) }

        let options = EnqueueOptions(queue: "cmd", maxAttempts: 1)
        let echo = try await gantry.enqueue("echo", args: ["x": 1], options: options)
        let flaky = try await gantry.enqueue("flaky", args: [String](), options: options)
        let hopeless = try await gantry.enqueue("hopeless", args: [String](), options: EnqueueOptions(queue: "cmd", maxAttempts: 5))
        let slow = try await gantry.enqueue("slow", args: [String](), options: options)

        #expect(try await eventually {
            let counts = try await gantry.stats().queues["cmd"]?.counts
            return counts?["completed"] == 1 && counts?["dead"] == 3
        }, "worker log:\n\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        let done = try await gantry.job(id: echo)
        #expect(done.result?["args"] == ["x": 1])
        #expect(done.result?["attempt"] == 1)
        #expect(done.result?["stdin"]?["id"] == .string(echo), "the job arrives as JSON on stdin")
        let failed = try await gantry.job(id: flaky)
        #expect(failed.errors.first?.message == "exited 1: disk full on attempt 1")
        #expect(failed.errors.first?.backtrace == ["warming up", "disk full on attempt 1"])
        let gaveUp = try await gantry.job(id: hopeless)
        #expect(gaveUp.attempt == 1, "exit 65 means no retry, whatever attempts remain")
        #expect(gaveUp.errors.first?.message.contains("do not retry") == true)
        let killed = try await gantry.job(id: slow)
        #expect(killed.errors.first?.message.contains("timed out") == true)

        worker.signal(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(15)) == .exited(0))
    }

    /// gantry-worker runs an operation's steps as commands: a step reads the globals from the job on stdin and
    /// steers the operation with `{"set": …}` and `{"jump_to": …}` lines; its other output is the result.
    @Test func gantryWorkerRunsTheStepsOfAnOperation() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let gantry = try GantryClient(url: "\(broker.host):\(broker.port)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-steps-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("step.py")
        try #"""
            #!/usr/bin/env python3
            import json, os, sys
            job = json.load(sys.stdin)
            globals_ = job["operation"]["globals"]
            if os.environ["GANTRY_JOB_TYPE"] == "check":
                print(json.dumps({"set": {"checked": globals_["n"] * 2}}))
                print(json.dumps({"jump_to": "express"}))
                print(json.dumps({"by": "check"}))
            else:
                print(json.dumps({"set": {"shipped_from": globals_["checked"]}}))
            """#.write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o755)
        let log = directory.appendingPathComponent("worker.log")
        let worker = try ChildProcess(
            executable: BrokerProcess.executable.deletingLastPathComponent().appendingPathComponent("gantry-worker").path,
            arguments: ["--broker", "\(broker.host):\(broker.port)", "--queue", "steps"]
                + ["check", "ship", "slow.ship"].flatMap { ["--handler", "\($0)=\(script.path)"] },
            standardOutput: .file(log.path), standardError: .standardOutput)
        defer { worker.signal(SIGKILL); _ = worker.waitBlocking(timeout: .seconds(5)) }

        let started = try await gantry.startOperation(
            "order", branches: ["main": ["check", "slow.ship"], "express": ["ship"]], globals: ["n": 21], queue: "steps")
        #expect(try await eventually { try await gantry.operation(id: started.id).state == .completed },
                "worker log:\n\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        let done = try await gantry.operation(id: started.id)
        #expect(done.globals == ["n": 21, "checked": 42, "shipped_from": 42])
        #expect(done.path == ["main", "express"], "the jump line sent it to express instead of slow.ship")
        let check = try #require(done.steps?.first)
        #expect(try await gantry.job(id: try #require(check.jobID)).result == ["by": "check"], "the other line is the result")
        worker.signal(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(15)) == .exited(0))
    }

    @Test func noOpThroughputOfOneWorker() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let address = "\(broker.host):\(broker.port)"
        let gantry = try GantryClient(url: address)
        let total = 2000
        for chunk in stride(from: 0, to: total, by: 500) {
            try await gantry.enqueueBatch((chunk..<chunk + 500).map { EnqueueOptions(queue: "noop").params(type: "noop", args: [.int(Int64($0))]) })
        }
        let worker = try Worker(url: address, queues: ["noop"], concurrency: 32)
        worker.register("noop") { (_: JobContext<[Int]>) in }
        let started = ContinuousClock.now
        let running = Task { try await worker.run() }
        #expect(try await eventually(timeout: .seconds(120)) { try await gantry.stats().queues["noop"]?.counts["completed"] == Int64(total) })
        let elapsed = ContinuousClock.now - started
        worker.shutdown()
        try await running.value
        let rate = Double(total) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        print("one Worker, concurrency 32, no-op handlers: \(total) jobs in \(elapsed) = \(Int(rate)) jobs/s (debug build)")
    }
}
