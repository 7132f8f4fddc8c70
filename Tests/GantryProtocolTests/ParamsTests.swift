import Foundation
import GantryProtocol
import GantryTesting
import Testing

@Suite(.deadline(.seconds(60))) struct ParamsTests {
    func enqueue(_ params: JSONValue) throws -> Enqueue.Params {
        let decoded = try GantryJSON.decodeParams(Enqueue.Params.self, from: params)
        try decoded.validate()
        return decoded
    }

    func fieldOfError(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as RPCErrorObject {
            #expect(error.code == -32602)
            return error.data?["field"]?.stringValue
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test func defaultsAreThoseOfTheDesign() throws {
        let params = try enqueue(["type": "email.send"])
        #expect(params.args == [])
        #expect(params.queue == "default")
        #expect(params.priority == 16383)
        #expect(params.maxAttempts == 25)
    }

    @Test func missingTypeIsNamed() {
        #expect(fieldOfError { _ = try enqueue(["args": [1]]) } == "type")
    }

    @Test func wrongTypesAreNamed() {
        #expect(fieldOfError { _ = try enqueue(["type": "x", "priority": "high"]) } == "priority")
        #expect(fieldOfError { _ = try enqueue(["type": "x", "run_at": "tomorrow"]) } == "run_at")
        #expect(fieldOfError { _ = try enqueue(["type": 5]) } == "type")
    }

    @Test func priorityOutOfRangeIsNamed() {
        #expect(fieldOfError { _ = try enqueue(["type": "x", "priority": 0]) } == "priority")
        #expect(fieldOfError { _ = try enqueue(["type": "x", "priority": 32768]) } == "priority")
    }

    @Test func queueNamesAreIdentifiers() {
        #expect(fieldOfError { _ = try enqueue(["type": "x", "queue": "mail; drop"]) } == "queue")
        #expect(fieldOfError { _ = try enqueue(["type": "x", "queue": ""]) } == "queue")
        #expect(fieldOfError { _ = try enqueue(["type": "x", "queue": "billing.eu-west:1"]) } == nil)
    }

    @Test func unknownFieldsAreRefusedByName() {
        #expect(fieldOfError { _ = try enqueue(["type": "x", "delay": 5]) } == "delay")
        #expect(fieldOfError {
            let batch = try GantryJSON.decodeParams(EnqueueBatch.Params.self, from: ["jobs": [["type": "a"], ["type": "b", "qeue": "x"]]])
            try batch.validate()
        } == "jobs[1].qeue")
    }

    @Test func runAtAndDelayExcludeEachOther() {
        #expect(fieldOfError { _ = try enqueue(["type": "x", "delay_ms": 5, "run_at": "2030-01-01T00:00:00Z"]) } == "delay_ms")
        #expect(fieldOfError { _ = try enqueue(["type": "x", "delay_ms": 9_000_000_000_000_000]) } == "delay_ms")
        #expect(fieldOfError { _ = try enqueue(["type": "x", "queue_timeout_ms": 315_360_000_001]) } == "queue_timeout_ms")
    }

    @Test func batchJobsAreNamedByIndex() {
        #expect(fieldOfError {
            let batch = try GantryJSON.decodeParams(EnqueueBatch.Params.self, from: ["jobs": [["type": "a"], ["type": "b", "priority": -1]]])
            try batch.validate()
        } == "jobs[1].priority")
    }

    @Test func paramsMustBeAnObject() {
        #expect(fieldOfError { _ = try GantryJSON.decodeParams(Stats.Params.self, from: [1, 2]) } == "params")
    }

    @Test func reserveBounds() {
        func reserve(_ params: JSONValue) throws {
            try GantryJSON.decodeParams(Reserve.Params.self, from: params).validate()
        }
        #expect(fieldOfError { try reserve(["queues": []]) } == "queues")
        #expect(fieldOfError { try reserve(["queues": ["a"], "max": 0]) } == "max")
        #expect(fieldOfError { try reserve(["queues": ["a"], "wait_ms": -1]) } == "wait_ms")
        #expect(fieldOfError { try reserve(["queues": ["a", "b"], "max": 10, "wait_ms": 1000]) } == nil)
    }

    @Test func timestampsReadWithAndWithoutFractionsAndOffsets() throws {
        let plain = try #require(GantryJSON.parseTimestamp("2030-01-02T03:04:05Z"))
        let fraction = try #require(GantryJSON.parseTimestamp("2030-01-02T03:04:05.250Z"))
        let offset = try #require(GantryJSON.parseTimestamp("2030-01-02T05:04:05+02:00"))
        #expect(fraction.timeIntervalSince(plain) == 0.25)
        #expect(offset == plain)
        #expect(GantryJSON.formatTimestamp(fraction) == "2030-01-02T03:04:05.250Z")
    }

    @Test func largeIntegersSurviveARoundTrip() throws {
        let value: JSONValue = ["big": .int(Int64.max), "neg": .int(Int64.min), "x": 1.5, "s": "a\"b\\c"]
        let data = try GantryJSON.makeEncoder().encode(value)
        #expect(try JSONDecoder().decode(JSONValue.self, from: data) == value)
    }
}
