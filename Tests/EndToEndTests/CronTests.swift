import Foundation
import GantryProtocol
import GantryTesting
import Testing

/// Cron schedules: one job per tick however many brokers run, state that survives restarts, manual runs,
/// schedules and limits from the config file, and the CLI.
@Suite(.deadline(.seconds(300))) struct CronTests {
    static func schedule(_ name: String, on client: LineClient) async throws -> JSONValue? {
        let schedules = try await client.result("cron.list")["schedules"]?.arrayValue ?? []
        return schedules.first { $0["name"] == .string(name) }
    }

    static func jobs(in queue: String, on client: LineClient) async throws -> [JSONValue] {
        try await client.result("jobs.list", ["queue": .string(queue), "limit": 500])["jobs"]?.arrayValue ?? []
    }

    @Test func everyTickFiresExactlyOnceWithTwoBrokers() async throws {
        let (first, url) = try await startBroker()
        let second = try await BrokerProcess(databaseURL: url)
        let client = try await first.connect()
        let created = try await client.result("cron.upsert", [
            "name": "beat", "cron": "* * * * * *", "type": "cron.beat", "queue": "beats", "args": ["x": 1], "priority": 7,
        ])
        #expect(created["created"] == true)
        #expect(created["schedule"]?["source"] == "rpc")
        try await Task.sleep(for: .seconds(4))
        _ = try await client.result("cron.pause", ["name": "beat"])

        let jobs = try await Self.jobs(in: "beats", on: client)
        let ticks = jobs.compactMap { $0["meta"]?["cron_tick"]?.stringValue }.sorted()
        #expect(ticks.count == jobs.count)
        #expect(ticks.count >= 3, "a tick a second for four seconds: \(ticks)")
        #expect(Set(ticks).count == ticks.count, "two brokers, one job per tick: \(ticks)")
        #expect(ticks.allSatisfy { $0.hasSuffix(".000Z") }, "ticks fall on whole seconds: \(ticks)")
        #expect(jobs.allSatisfy { $0["type"] == "cron.beat" && $0["args"] == ["x": 1] && $0["priority"] == 7 && $0["meta"]?["cron"] == "beat" })
        let listed = try #require(try await Self.schedule("beat", on: client))
        #expect(listed["last_job_id"] == jobs.first?["id"], "the newest job is the last run")
        let firedBy = [first, second].filter { $0.log.contains("cron schedule fired") }.count
        #expect(firedBy >= 1)
    }

    @Test func pauseAndResumeSurviveARestart() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        var broker = try await BrokerProcess(databaseURL: url)
        var client = try await broker.connect()
        _ = try await client.result("cron.upsert", ["name": "tick", "cron": "* * * * * *", "type": "tick", "queue": "ticks"])
        let paused = try await client.result("cron.pause", ["name": "tick"])["schedule"]
        #expect(paused?["paused"] == true)
        #expect(paused?["next_run_at"] == nil)
        broker.signal(SIGTERM)
        #expect(try await broker.waitForExit() == 0)

        broker = try await BrokerProcess(databaseURL: url)
        client = try await broker.connect()
        let listed = try #require(try await Self.schedule("tick", on: client))
        #expect(listed["paused"] == true)
        #expect(listed["paused_at"] == paused?["paused_at"])
        let before = try await Self.jobs(in: "ticks", on: client).count
        try await Task.sleep(for: .milliseconds(2200))
        #expect(try await Self.jobs(in: "ticks", on: client).count == before, "a paused schedule fires nothing")

        let resumed = try await client.result("cron.resume", ["name": "tick"])["schedule"]
        #expect(resumed?["paused"] == false)
        #expect(resumed?["next_run_at"] != nil)
        let deadline = ContinuousClock.now + .seconds(10)
        while try await Self.jobs(in: "ticks", on: client).count == before && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await Self.jobs(in: "ticks", on: client).count > before, "it fires again once resumed")
    }

    @Test func aTriggerRunsNowWithoutMovingTheNextTick() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        let created = try await client.result("cron.upsert", [
            "name": "new-year", "cron": "0 0 1 1 *", "type": "greet", "queue": "greetings", "timezone": "Pacific/Auckland",
            "description": "Happy new year",
        ])["schedule"]
        let nextRun = try #require(created?["next_run_at"])
        let triggered = try await client.result("cron.trigger", ["name": "new-year"])
        let id = try #require(triggered["id"])
        let job = try await client.result("jobs.get", ["id": id])
        #expect(job["type"] == "greet")
        #expect(job["queue"] == "greetings")
        #expect(job["state"] == "available")
        #expect(job["meta"] == ["cron": "new-year", "cron_trigger": true])
        #expect(triggered["schedule"]?["last_job_id"] == id)
        #expect(triggered["schedule"]?["next_run_at"] == nextRun)
        #expect(triggered["schedule"]?["description"] == "Happy new year")

        // Paused schedules can still be run by hand; a deleted one is gone.
        _ = try await client.result("cron.pause", ["name": "new-year"])
        #expect(try await client.result("cron.trigger", ["name": "new-year"])["id"] != id)
        #expect(try await client.result("cron.delete", ["name": "new-year"]) == ["deleted": true])
        for method in ["cron.trigger", "cron.pause", "cron.resume", "cron.delete"] {
            let missing = try await client.call(method, ["name": "new-year"])
            #expect(missing.errorCode == -32002, "\(method)")
            #expect(missing.error?.data?["name"] == "new-year")
        }
        #expect(try await client.result("cron.list")["schedules"] == [])
    }

    @Test func badSchedulesAreRefusedByField() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        for (params, field, words) in [
            (["name": "a", "cron": "0 25 * * *", "type": "t"] as JSONValue, "cron", "hour field \"25\""),
            (["name": "a", "cron": "* * *", "type": "t"], "cron", "3 fields"),
            (["name": "a", "cron": "0 0 30 2 *", "type": "t"], "cron", "never fires"),
            (["name": "a", "cron": "@daily", "type": "t", "timezone": "Mars/Olympus"], "timezone", "IANA name"),
            (["name": "has space", "cron": "@daily", "type": "t"], "name", "letters, digits"),
            (["name": "a", "cron": "@daily", "type": "t", "priority": 0], "priority", "between 1"),
            (["name": "a", "cron": "@daily"], "type", "type"),
        ] {
            let refused = try await client.call("cron.upsert", params)
            #expect(refused.errorCode == -32602, "\(params)")
            #expect(refused.error?.data?["field"] == .string(field), "\(params): \(refused.error?.message ?? "")")
            #expect(refused.error?.message.contains(words) == true, "\(refused.error?.message ?? "")")
        }
        // Replacing keeps the schedule (created: false) and moves the next run only when the timing changed.
        let first = try await client.result("cron.upsert", ["name": "report", "cron": "0 3 * * *", "type": "report"])
        let renamedType = try await client.result("cron.upsert", ["name": "report", "cron": "0 3 * * *", "type": "report.v2"])
        #expect(renamedType["created"] == false)
        #expect(renamedType["schedule"]?["next_run_at"] == first["schedule"]?["next_run_at"])
        #expect(renamedType["schedule"]?["type"] == "report.v2")
        let retimed = try await client.result("cron.upsert", ["name": "report", "cron": "0 3 * * *", "type": "report.v2", "timezone": "Asia/Tokyo"])
        #expect(retimed["schedule"]?["next_run_at"] != first["schedule"]?["next_run_at"])
    }

    @Test func theConfigFileDeclaresSchedulesAndLimits() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-cron-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: config) }
        try """
            cron:
              nightly:
                cron: "0 3 * * *"
                type: report.build
                args: [1, "x"]
                queue: reports
                timezone: Europe/Berlin
                description: The nightly report
              warm:
                cron: "@hourly"
                type: cache.warm
            queues:
              mail:
                concurrency: 2
                rate_limit: {limit: 10, period_ms: 1000}
            """.write(to: config, atomically: true, encoding: .utf8)
        var broker = try await BrokerProcess(databaseURL: url, extraArguments: ["--config", config.path])
        var client = try await broker.connect()
        let nightly = try #require(try await Self.schedule("nightly", on: client))
        #expect(nightly["source"] == "config")
        #expect(nightly["args"] == [1, "x"])
        #expect(nightly["timezone"] == "Europe/Berlin")
        let next = try #require(nightly["next_run_at"]?.stringValue)
        #expect(next.hasSuffix("T02:00:00.000Z") || next.hasSuffix("T01:00:00.000Z"), "03:00 in Berlin is 01:00 or 02:00 UTC: \(next)")
        #expect(try await Self.schedule("warm", on: client)?["cron"] == "@hourly")
        let mail = try await client.result("queues.list")["queues"]?["mail"]
        #expect(mail?["concurrency"] == 2)
        #expect(mail?["rate_limit"] == ["limit": 10, "period_ms": 1000])

        // An RPC schedule and a pause made meanwhile outlive a restart with a shorter file.
        _ = try await client.result("cron.upsert", ["name": "adhoc", "cron": "@daily", "type": "adhoc"])
        _ = try await client.result("cron.pause", ["name": "nightly"])
        broker.signal(SIGTERM)
        #expect(try await broker.waitForExit() == 0)
        try """
            cron:
              nightly:
                cron: "0 3 * * *"
                type: report.build
                queue: reports
                timezone: Europe/Berlin
            queues: {}
            """.write(to: config, atomically: true, encoding: .utf8)
        broker = try await BrokerProcess(databaseURL: url, extraArguments: ["--config", config.path])
        client = try await broker.connect()
        let names = (try await client.result("cron.list")["schedules"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
        #expect(names == ["adhoc", "nightly"], "warm left the file, so it is gone")
        #expect(try await Self.schedule("nightly", on: client)?["paused"] == true)
        #expect(try await client.result("queues.list")["queues"]?["mail"]?["concurrency"] == nil)

        // A broken schedule in the file stops gantryd before it serves anything, naming the schedule.
        try """
            cron:
              broken:
                cron: "61 * * * *"
                type: t
            """.write(to: config, atomically: true, encoding: .utf8)
        let refused = try await runGantryd(["--config", config.path, "--database-url", url, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("cron schedule broken"), "\(refused.output)")
        #expect(refused.output.contains("61 is outside 0–59"), "\(refused.output)")
    }

    @Test func theCLIListsTriggersPausesAndLimits() async throws {
        let (broker, _) = try await startBroker()
        let address = "\(broker.host):\(broker.port)"
        let client = try await broker.connect()
        _ = try await client.result("cron.upsert", ["name": "digest", "cron": "30 8 * * mon-fri", "type": "digest.send", "queue": "mail"])
        func gantry(_ arguments: [String]) async throws -> (status: Int32, output: String) {
            try await runBuiltTool("gantry", arguments + ["--broker", address])
        }
        let listed = try await gantry(["cron"])
        #expect(listed.status == 0)
        #expect(listed.output.contains("digest"), "\(listed.output)")
        #expect(listed.output.contains("30 8 * * mon-fri"))
        #expect(listed.output.contains("active"))
        let triggered = try await gantry(["cron", "trigger", "digest"])
        #expect(triggered.status == 0)
        #expect(triggered.output.contains("schedule digest triggered: job "), "\(triggered.output)")
        #expect(try await gantry(["cron", "pause", "digest"]).output == "schedule digest paused\n")
        #expect(try await gantry(["cron"]).output.contains("paused"))
        #expect(try await gantry(["cron", "resume", "digest"]).output.hasPrefix("schedule digest resumed; next run 20"))
        let missing = try await gantry(["cron", "trigger", "nope"])
        #expect(missing.status == 1)
        #expect(missing.output.contains("No cron schedule is named nope"))

        let limited = try await gantry(["limit", "mail", "--concurrency", "3", "--rate", "5/1s"])
        #expect(limited.output == "queue mail: 3 at once, 5 per 1.0 s\n", "\(limited.output)")
        #expect(try await gantry(["queues"]).output.contains("3 at once, 5 per 1.0 s"))
        #expect(try await gantry(["limit", "mail"]).output == "queue mail: no limits\n")
        let badRate = try await gantry(["limit", "mail", "--rate", "fast"])
        #expect(badRate.status == 64)
        #expect(badRate.output.contains("--rate is N/PERIOD"))
    }
}
