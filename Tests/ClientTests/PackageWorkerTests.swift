import ChildProcesses
import Foundation
import GantryClient
import GantryProtocol
import GantryTesting
import Testing

@Suite(.deadline(.seconds(180))) struct PackageWorkerTests {
    /// gantry-worker runs a package's steps from a folder: a Python step and an SQL step (psql against the
    /// database) both read the config the execution runs with (the package's, with the run's override), get the
    /// same JSON on stdin and as their first argument, and steer the globals with `{"set": …}` lines.
    @Test func gantryWorkerRunsAPackagesStepsFromAFolder() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let gantry = try GantryClient(url: "\(broker.host):\(broker.port)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-package-\(UUID().uuidString)")
        let own = directory.appendingPathComponent("nightly.report")
        try FileManager.default.createDirectory(at: own, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try #"""
            import json, sys
            given = json.load(sys.stdin)
            assert json.loads(sys.argv[1]) == given, "the same JSON as the first argument"
            print(json.dumps({"set": {"rows": 3, "python_region": given["config"]["region"], "python_package": given["package_name"]}}))
            print(json.dumps({"fetched": given["args"]}))
            """#.write(to: directory.appendingPathComponent("report.fetch.py"), atomically: true, encoding: .utf8)
        // In the package's own folder, so it wins over a shared file of the same type.
        try #"""
            SELECT json_build_object('set', json_build_object(
                'sql_region', :'input'::jsonb -> 'config' ->> 'region',
                'sql_rows', (:'input'::jsonb -> 'globals' ->> 'rows')::int * 10));
            """#.write(to: own.appendingPathComponent("report.store.sql"), atomically: true, encoding: .utf8)
        try "exit 1\n".write(to: directory.appendingPathComponent("report.store.sh"), atomically: true, encoding: .utf8)

        let log = directory.appendingPathComponent("worker.log")
        let worker = try ChildProcess(
            executable: BrokerProcess.executable.deletingLastPathComponent().appendingPathComponent("gantry-worker").path,
            arguments: ["--broker", "\(broker.host):\(broker.port)", "--queue", "reports", "--package-dir", directory.path, "--sql-url", url],
            standardOutput: .file(log.path), standardError: .standardOutput)
        defer { worker.signal(SIGKILL); _ = worker.waitBlocking(timeout: .seconds(5)) }

        _ = try await gantry.call(PackagesUpsert.self, PackagesUpsert.Params(
            name: "nightly.report", steps: [["type": "report.fetch", "args": ["day": "mon"]], "report.store"],
            config: ["region": "eu", "limit": 10], queue: "reports"))
        let run = try await gantry.runPackage("nightly.report", config: ["region": "us"])
        let workerLog = { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        #expect(try await eventually { try await gantry.operation(id: run.id).state == .completed }, "worker log:\n\(workerLog())")
        let done = try await gantry.operation(id: run.id)
        #expect(done.globals == ["rows": 3, "python_region": "us", "python_package": "nightly.report", "sql_region": "us", "sql_rows": 30])
        let executions = try await gantry.executions(ofPackage: "nightly.report")
        let execution = try #require(executions.executions.first)
        #expect(execution.id == run.id && execution.trigger == .manual)
        #expect(execution.config == ["limit": 10, "region": "us"], "the package's config with the run's override")
        #expect(execution.steps.map(\.state) == [.completed, .completed])
        #expect(execution.steps.first?.result == ["fetched": ["day": "mon"]], "the step's other output is its result")

        worker.signal(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(15)) == .exited(0))
    }

    /// A step whose type no file runs, and an SQL step on a worker without --sql-url, fail for good (a retry on
    /// the same worker would not do better), and the execution says why.
    @Test func aStepGantryWorkerCannotRunFailsForGoodWithTheReason() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let gantry = try GantryClient(url: "\(broker.host):\(broker.port)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-package-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "SELECT 1;\n".write(to: directory.appendingPathComponent("db.vacuum.sql"), atomically: true, encoding: .utf8)
        let log = directory.appendingPathComponent("worker.log")
        let worker = try ChildProcess(
            executable: BrokerProcess.executable.deletingLastPathComponent().appendingPathComponent("gantry-worker").path,
            arguments: ["--broker", "\(broker.host):\(broker.port)", "--queue", "maintenance", "--package-dir", directory.path],
            standardOutput: .file(log.path), standardError: .standardOutput)
        defer { worker.signal(SIGKILL); _ = worker.waitBlocking(timeout: .seconds(5)) }

        _ = try await gantry.call(PackagesUpsert.self, PackagesUpsert.Params(name: "vacuum", steps: ["db.vacuum"], queue: "maintenance"))
        let run = try await gantry.runPackage("vacuum")
        #expect(try await eventually { try await gantry.operation(id: run.id).state == .failed },
                "worker log:\n\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        let failed = try await gantry.operation(id: run.id)
        #expect(failed.error?["message"]?.stringValue?.contains("no --sql-url") == true, "\(String(describing: failed.error))")
        #expect(failed.steps?.first?.attempts == 1, "no retries")
        worker.signal(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(15)) == .exited(0))
    }
}
