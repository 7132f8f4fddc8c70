import Foundation
import GantryClient
import GantryProtocol

/// What a step's command printed: lines that are JSON objects holding only `set` and `jump_to` steer the
/// operation; everything else is the job's result, as for any job.
struct StepOutputLines {
    var set: JSONObject?
    var jumpTo: JumpTarget?
    var rest: String

    init(_ output: String) {
        var kept: [Substring] = []
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            guard let fields = Self.steering(line) else {
                kept.append(line)
                continue
            }
            if let values = fields["set"]?.objectValue {
                var merged = set ?? [:]
                for (key, value) in values { merged[key] = value }
                set = merged
            }
            if let target = fields["jump_to"], let jump = try? JSONValueDecoder.decode(JumpTarget.self, from: target) { jumpTo = jump }
        }
        rest = kept.joined(separator: "\n")
    }

    /// The line's members when it is an object of `set` and `jump_to` only.
    private static func steering(_ line: Substring) -> JSONObject? {
        let text = line.trimmingCharacters(in: .whitespaces)
        guard text.hasPrefix("{"), let value = try? JSONReader.read(Data(text.utf8)), let fields = value.objectValue, !fields.isEmpty,
              fields.keys.allSatisfy({ $0 == "set" || $0 == "jump_to" })
        else { return nil }
        return fields
    }
}
