import Foundation
import GantryProtocol
import GantryTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Operations through real `gantryd` processes: what a worker sees, what survives a broker killed mid-operation,
/// and the refusals a client gets for plans and acks that cannot be.
@Suite(.deadline(.seconds(240))) struct OperationTests {
    /// Reserves one job of `queue`, waiting for it.
    static func next(_ client: LineClient, _ queue: String) async throws -> JSONValue {
        let jobs = try await reserve(client, [queue], max: 1, waitMs: 10_000, leaseMs: 2000)
        return try #require(jobs.first, "a step's job in \(queue)")
    }

    static func ack(_ client: LineClient, _ job: JSONValue, _ extra: JSONObject = [:]) async throws {
        var params: JSONObject = ["id": job["id"] ?? .null]
        for (key, value) in extra { params[key] = value }
        let response = try await client.call("ack", .object(params))
        #expect(response.result?["ok"] == true, "\(response)")
    }

    @Test func aBrokerKilledMidOperationLosesNothingAndANewBrokerFinishesIt() async throws {
        let (doomed, url) = try await startBroker(["--broker-timeout-ms", "2000"])
        let worker = try await doomed.connect()
        let started = try await worker.result("operations.start", [
            "name": "crash.test", "queue": "crash", "globals": ["n": 0],
            "branches": ["main": ["crash.one", "crash.two", "crash.three"]],
        ])
        let id = try #require(started["id"]?.stringValue)
        let one = try await Self.next(worker, "crash")
        #expect(one["operation"]?["step"] == "crash.one")
        try await Self.ack(worker, one, ["set": ["one": true]])
        // Step two is held when the broker dies: its lease comes back, and step one is never run again.
        let two = try await Self.next(worker, "crash")
        #expect(two["operation"]?["globals"]?["one"] == true)
        doomed.signal(SIGKILL)
        _ = try await doomed.waitForExit()

        let survivor = try await BrokerProcess(databaseURL: url, extraArguments: ["--broker-timeout-ms", "2000"])
        let rescuer = try await survivor.connect()
        let again = try await Self.next(rescuer, "crash")
        #expect(again["type"] == "crash.two", "the held step, not step one again")
        #expect(again["attempt"] == 2)
        try await Self.ack(rescuer, again, ["set": ["two": true]])
        let three = try await Self.next(rescuer, "crash")
        #expect(three["operation"]?["globals"] == ["n": 0, "one": true, "two": true])
        try await Self.ack(rescuer, three)

        let operation = try await rescuer.result("operations.get", ["id": .string(id)])
        #expect(operation["state"] == "completed")
        let steps = operation["steps"]?.arrayValue ?? []
        #expect(steps.map { $0["type"]?.stringValue } == ["crash.one", "crash.two", "crash.three"], "one run per step: \(steps)")
        #expect(steps.map { $0["attempts"]?.intValue } == [1, 2, 1])
        #expect(try await reserve(rescuer, ["crash"], max: 10).isEmpty, "nothing left over")
    }

    @Test func aRetriedStepJobResumesItsFailedOperation() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        let started = try await client.result("operations.start", [
            "name": "resume.test", "queue": "resume",
            "branches": ["main": ["resume.one", ["type": "resume.two", "max_attempts": 1], "resume.three"]],
        ])
        let id = try #require(started["id"]?.stringValue)
        try await Self.ack(client, try await Self.next(client, "resume"))
        let two = try await Self.next(client, "resume")
        let nacked = try await client.result("nack", ["id": two["id"] ?? .null, "error": ["message": "the API said 503"]])
        #expect(nacked["state"] == "dead", "max_attempts 1: dead at once")
        let failed = try await client.result("operations.get", ["id": .string(id)])
        #expect(failed["state"] == "failed")
        #expect(failed["error"]?["message"] == "the API said 503")
        #expect(failed["steps"]?[2]?["state"] == "unprocessed")

        // An operator retrying the dead step's job (jobs.retry) resumes the operation at that step.
        _ = try await client.result("jobs.retry", ["id": two["id"] ?? .null])
        #expect(try await client.result("operations.get", ["id": .string(id)])["state"] == "running")
        let retried = try await Self.next(client, "resume")
        #expect(retried["id"] == two["id"])
        try await Self.ack(client, retried)
        let three = try await Self.next(client, "resume")
        #expect(three["type"] == "resume.three")
        try await Self.ack(client, three)
        #expect(try await client.result("operations.get", ["id": .string(id)])["state"] == "completed")
    }

    @Test func aParallelGroupJoinsBeforeTheNextStep() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        _ = try await client.result("operations.start", [
            "name": "fan.test", "queue": "fan",
            "branches": ["main": [["parallel": ["fan.a", "fan.b", "fan.c"]], "fan.join"]],
        ])
        let group = try await reserve(client, ["fan"], max: 10, waitMs: 5000)
        #expect(Set(group.compactMap { $0["type"]?.stringValue }) == ["fan.a", "fan.b", "fan.c"])
        // Two of three done: the join waits.
        try await Self.ack(client, group[0], ["set": ["a": 1]])
        try await Self.ack(client, group[1], ["set": ["b": 2]])
        #expect(try await reserve(client, ["fan"], max: 10).isEmpty)
        try await Self.ack(client, group[2], ["set": ["c": 3]])
        let join = try await Self.next(client, "fan")
        #expect(join["type"] == "fan.join")
        #expect(join["operation"]?["globals"] == ["a": 1, "b": 2, "c": 3], "every member's set, merged")
    }

    @Test func aRetryFromTheStartLeavesNothingOfTheEarlierRunGoingOn() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        let started = try await client.result("operations.start", [
            "name": "restart.test", "queue": "restart", "globals": ["tries": 0],
            "branches": ["main": [["parallel": [["type": "r.fails", "max_attempts": 1], "r.slow", "r.waits"]], "r.after"]],
        ])
        let id = try #require(started["id"]?.stringValue)
        let group = try await reserve(client, ["restart"], max: 2, waitMs: 5000)
        let failing = try #require(group.first { $0["type"] == "r.fails" })
        let slow = try #require(group.first { $0["type"] != "r.fails" })
        _ = try await client.result("ack", ["id": slow["id"] ?? .null, "set": ["tries": 1]])
        _ = try await client.result("nack", ["id": failing["id"] ?? .null, "error": ["message": "nope"]])
        #expect(try await client.result("operations.get", ["id": .string(id)])["state"] == "failed")

        // The third member still waits; from the start, it is cancelled and all three run anew with the first globals.
        let retried = try await client.result("operations.retry", ["id": .string(id), "from": "start"])
        #expect(retried["job_ids"]?.arrayValue?.count == 3)
        let fresh = try await reserve(client, ["restart"], max: 10, waitMs: 5000)
        #expect(fresh.count == 3, "only the new run's three jobs wait: \(fresh.map { $0["type"] ?? .null })")
        #expect(fresh.allSatisfy { $0["operation"]?["globals"] == ["tries": 0] })
        let operation = try await client.result("operations.get", ["id": .string(id)])
        let earlier = (operation["steps"]?.arrayValue ?? []).prefix(3).map { $0["state"]?.stringValue ?? "" }
        #expect(earlier.sorted() == ["cancelled", "completed", "failed"], "the earlier run's steps, as they ended: \(earlier)")
    }

    @Test func plansAndAcksThatCannotBeAreRefusedNamingTheField() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        func refusal(_ method: String, _ params: JSONValue) async throws -> String? {
            let response = try await client.call(method, params)
            #expect(response.errorCode == -32602, "\(response)")
            return response.error?.data?["field"]?.stringValue
        }
        let tenThousand = JSONValue.array(Array(repeating: "long.step", count: 10_000))
        #expect(try await refusal("operations.start", ["name": "long", "branches": ["main": tenThousand]]) == "branches.main[1000]")
        #expect(try await refusal("operations.start", ["name": "empty", "branches": ["main": ["x"], "other": []]]) == "branches.other")
        #expect(try await refusal("operations.start", ["name": "nomain", "branches": ["other": ["x"]]]) == "branches.main")
        #expect(try await refusal("operations.start", ["name": "group", "branches": ["main": [["parallel": []]]]]) == "branches.main[0].parallel")
        #expect(try await refusal("operations.start", ["name": "typo", "branches": ["main": [["type": "x", "retries": 3]]]]) == "branches.main[0].retries")
        #expect(try await refusal("operations.start", ["name": "globals", "globals": [1, 2], "branches": ["main": ["x"]]]) == "globals")

        let plain = try await enqueue(client, ["type": "plain", "queue": "refusals"])
        _ = try await reserve(client, ["refusals"])
        #expect(try await refusal("ack", ["id": .string(plain), "set": ["x": 1]]) == "set")
        #expect(try await refusal("ack", ["id": .string(plain), "jump_to": "main"]) == "jump_to")

        _ = try await client.result("operations.start", ["name": "jumps", "queue": "refusals", "branches": ["main": ["j.one", "j.two"]]])
        let step = try await Self.next(client, "refusals")
        #expect(try await refusal("ack", ["id": step["id"] ?? .null, "jump_to": "elsewhere"]) == "jump_to")
        #expect(try await refusal("ack", ["id": step["id"] ?? .null, "jump_to": ["branch": "main", "step": "j.three"]]) == "jump_to.step")
        #expect(try await refusal("ack", ["id": step["id"] ?? .null, "set": "not an object"]) == "set")
        // Nothing of a refused ack happened: the step is still held and acks normally.
        try await Self.ack(client, step)
        #expect(try await Self.next(client, "refusals")["type"] == "j.two")
        // A waiting step's job cannot be discarded (its operation would wait for ever).
        _ = try await client.result("operations.start", ["name": "discard", "queue": "waiting", "branches": ["main": ["d.one"]]])
        let waiting = try #require(try await client.result("jobs.list", ["queue": "waiting"])["jobs"]?[0]?["id"])
        let discard = try await client.call("jobs.discard", ["id": waiting])
        #expect(discard.errorCode == -32008)
        #expect(discard.error?.message.contains("operations.cancel") == true, "\(discard)")
    }

    @Test func finishedOperationsAreCleanedUpWithTheirSteps() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        let done = try await client.result("operations.start", ["name": "old", "queue": "clean", "branches": ["main": ["c.one"]]])
        try await Self.ack(client, try await Self.next(client, "clean"))
        let running = try await client.result("operations.start", ["name": "live", "queue": "clean", "branches": ["main": ["c.two"]]])
        let cleaned = try await client.result("cleanup", ["states": ["completed"], "older_than_ms": 0])
        #expect(cleaned["deleted_operations"] == 1)
        #expect(try await client.call("operations.get", ["id": done["id"] ?? .null]).errorCode == -32002)
        #expect(try await client.result("operations.get", ["id": running["id"] ?? .null])["state"] == "running", "a running operation stays")
        // One queue's cleanup leaves operations, which have no queue, alone.
        #expect(try await client.result("cleanup", ["states": ["completed"], "older_than_ms": 0, "queue": "clean"])["deleted_operations"] == nil)
    }
}
