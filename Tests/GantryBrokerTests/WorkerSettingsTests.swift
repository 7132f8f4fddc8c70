import Foundation
@testable import gantry_worker
import GantrySettings
import GantryTesting
import Testing

/// gantry-worker's settings, read the way it reads them, without starting it.
@Suite(.deadline(.seconds(60))) struct WorkerSettingsTests {
    func problem(_ body: () throws -> Any) -> String? {
        do { _ = try body(); return nil } catch let problem as SettingProblem { return problem.description } catch { return "\(error)" }
    }

    @Test func flagsRepeatForListsAndTheFilesHandlersMergeWithTheFlags() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-worker-\(UUID().uuidString).yml").path
        try "queues: [mail, low]\nconcurrency: 8\nhandlers:\n  email.send: python3 send.py\n  report: ./report.sh\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let settings = try WorkerSettings.resolve(
            flags: ["--queue", "urgent", "--queue", "mail", "--handler", "report=./report-v2.sh", "--timeout-ms=5000"],
            configFile: path, environment: ["GANTRY_URL": "gantry://broker:7440"])
        #expect(settings.queues == ["urgent", "mail"], "the flags' queues, in order, instead of the file's")
        #expect(settings.concurrency == 8)
        #expect(settings.handlers == ["email.send": "python3 send.py", "report": "./report-v2.sh"], "a flag wins for its type only")
        #expect(settings.timeout == .seconds(5))
        #expect(settings.broker == "gantry://broker:7440", "GANTRY_URL still names the broker")
    }

    @Test func defaultsAndErrors() {
        let settings = try? WorkerSettings.resolve(flags: ["--handler", "a=true"], configFile: nil, environment: [:])
        #expect(settings?.queues == ["default"] && settings?.concurrency == 4 && settings?.broker == "127.0.0.1:7440")
        #expect(problem { try WorkerSettings.resolve(flags: [], configFile: nil, environment: [:]) }?
            .hasPrefix("Give at least one --handler TYPE=COMMAND") == true)
        #expect(problem { try WorkerSettings.resolve(flags: ["--handler", "nothing"], configFile: nil, environment: [:]) }
            == #"--handler takes TYPE=COMMAND, such as --handler email.send='python3 send.py', got "nothing"."#)
        #expect(problem { try WorkerSettings.resolve(flags: ["--handler", "a=b"], configFile: nil, environment: ["GANTRY_WORKER_CONCURRENCY": "0"]) }
            == "GANTRY_WORKER_CONCURRENCY must be at least 1, got 0.")
    }
}
