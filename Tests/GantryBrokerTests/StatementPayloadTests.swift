import Foundation
@testable import GantryBroker
import GantryProtocol
import GantryTesting
import Testing

/// The JSON the hot statements take as their first parameter is written member by member; it must say what
/// Codable said (the order of members does not matter to `json_to_record`, so they are compared as objects).
@Suite(.deadline(.seconds(60))) struct StatementPayloadTests {
    func expectSameObjects<Value: DirectJSONWritable>(_ values: [Value], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let direct = try JSONReader.read(Data(try JSONObjectWriter.array(values)))
        let codable = try JSONReader.read(try GantryJSON.makeEncoder().encode(values))
        func sorted(_ value: JSONValue) -> [[String: JSONValue]] {
            (value.arrayValue ?? []).map { element in
                var members: [String: JSONValue] = [:]
                for (key, member) in element.objectValue ?? [:] {
                    // Codable writes a UUID in upper case, the writers in PostgreSQL's lower case; it reads either.
                    members[key] = key == "session_id" ? member.stringValue.map { .string($0.lowercased()) } ?? member : member
                }
                return members
            }
        }
        #expect(sorted(direct) == sorted(codable), sourceLocation: sourceLocation)
        #expect(direct.arrayValue?.count == values.count, sourceLocation: sourceLocation)
    }

    @Test func newJobsAndCompletions() throws {
        let bare = Enqueue.Params(type: "t", queue: "q")
        var full = try GantryJSON.makeDecoder().decode(Enqueue.Params.self, from: Data(#"""
            {"type": "a \"b\"", "queue": "q2", "args": {"z": 1.0, "a": [null, 1e21]}, "priority": 3,
             "run_at": "2030-01-31T10:00:09.250001Z", "max_attempts": 4, "timeout_ms": 5000, "queue_timeout_ms": 60000,
             "unique_key": "k\n", "unique_for_ms": 1000, "tags": ["x", "y,z"], "meta": {"trace": "t"}}
            """#.utf8))
        full.delayMs = nil
        try expectSameObjects([bare, full].map(JobStore.NewJobRecord.init))
        try expectSameObjects([
            JobStore.Completion(id: 1, sessionID: UUID(), result: nil),
            JobStore.Completion(id: 2, sessionID: UUID(), result: .null),
            JobStore.Completion(id: 3, sessionID: UUID(), result: ["n": .number("2.50")]),
        ])
    }
}
