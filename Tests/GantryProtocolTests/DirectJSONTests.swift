import Foundation
import GantryProtocol
import GantryTesting
import Testing

/// The hot answers' own writers spell exactly what their Codable conformances spell, byte for byte.
@Suite(.deadline(.seconds(60))) struct DirectJSONTests {
    static let texts = ["", "plain", "quote \" and \\ backslash", "line\nbreak\ttab\u{1}", "ünïcødé ✓ 🚀", "</script>"]
    static let values: [JSONValue] = [
        .null, .bool(true), .int(-7), .number("1.0"), .number("1e21"), .number("-0"), .double(2.5),
        .string("s \" \\ \u{7}"), .array([.int(1), .object(["z": .int(1), "a": .array([])])]),
        .object(["b": .number("100.0"), "a": .object([:]), "": .null]),
    ]
    static let dates = [
        Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_796_000_000.123_456),
        Date(timeIntervalSince1970: 951_782_400.999_9), Date(timeIntervalSince1970: 4_102_444_799.5),
    ]

    func expectSameBytes<Value: DirectJSONWritable>(_ value: Value, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let direct = String(decoding: try JSONObjectWriter.data(value), as: UTF8.self)
        let codable = try JSONWriter.string(JSONValueEncoder.encode(value))
        #expect(direct == codable, sourceLocation: sourceLocation)
        // And through the encoder every answer goes through.
        #expect(String(decoding: try GantryJSON.makeEncoder().encode(value), as: UTF8.self) == codable, sourceLocation: sourceLocation)
    }

    @Test func jobsInEveryShape() throws {
        for (index, text) in Self.texts.enumerated() {
            let value = Self.values[index % Self.values.count]
            let date = Self.dates[index % Self.dates.count]
            let bare = Job(id: String(index), type: text, queue: "q\(text)", args: value, state: JobState.allCases[index % JobState.allCases.count],
                           priority: index - 3, attempt: index, maxAttempts: 25, runAt: date, enqueuedAt: date)
            try expectSameBytes(bare)
            var full = bare
            full.reservedAt = date
            full.leaseExpiresAt = Self.dates[(index + 1) % Self.dates.count]
            full.finishedAt = date
            full.timeoutMs = Int64(index) * 1_000_000_000_000
            full.expiresAt = date
            full.uniqueKey = text
            full.tags = Self.texts
            full.meta = Self.values[(index + 3) % Self.values.count]
            full.errors = [JobError(attempt: 1, message: text, kind: "Timeout", backtrace: value, reason: "nack", at: date,
                                    sessionID: "s", worker: text)]
            full.result = value
            full.cancelRequestedAt = date
            try expectSameBytes(full)
        }
    }

    @Test func reservedJobsAndTheOtherHotAnswers() throws {
        var jobs: [ReservedJob] = []
        for (index, text) in Self.texts.enumerated() {
            var job = ReservedJob(id: String(index), type: text, args: Self.values[index % Self.values.count], queue: text, priority: index,
                                  attempt: 1, maxAttempts: 3, enqueuedAt: Self.dates[index % Self.dates.count],
                                  leaseExpiresAt: Self.dates[(index + 2) % Self.dates.count], meta: Self.values[(index + 1) % Self.values.count])
            try expectSameBytes(job)
            if index % 2 == 0 {
                job.operation = StepContext(id: "9", name: text, branch: "main", step: "s", index: index, globals: Self.values[index % Self.values.count])
            }
            if index % 3 == 0 { job.package = PackageContext(name: text, config: ["region": "eu"]) }
            try expectSameBytes(job)
            jobs.append(job)
        }
        try expectSameBytes(Reserve.Result(jobs: []))
        try expectSameBytes(Reserve.Result(jobs: jobs))
        try expectSameBytes(Enqueue.Result(id: "1", state: .available))
        try expectSameBytes(Enqueue.Result(id: "2", state: .scheduled, duplicate: true))
        try expectSameBytes(Ack.Result())
        try expectSameBytes(Ack.Result(ok: true, cancelRequested: true))
        try expectSameBytes(Ack.Result(acked: ["1", "2"], lost: [Ack.Lost(id: "3", state: .dead), Ack.Lost(id: "4", state: nil)],
                                       cancelRequestedIDs: ["2"]))
        try expectSameBytes(Ack.Result(acked: [], lost: [], cancelRequestedIDs: []))
    }
}
