import ArgumentParser
import Foundation
import GantryClient
import GantryProtocol

struct CleanupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup",
        abstract: "Delete finished jobs older than an age, in short batches, with progress.",
        discussion: "Ages are a number and a unit: 500ms, 90s, 30m, 12h, 7d. Example: gantry cleanup --completed-older-than 7d --dead-older-than 30d")
    @OptionGroup var connection: Connection
    @Option(help: "Delete completed jobs that finished longer ago than this.") var completedOlderThan: String?
    @Option(help: "Delete dead jobs that died longer ago than this.") var deadOlderThan: String?
    @Option(help: "Delete cancelled and expired jobs older than this.") var cancelledOlderThan: String?
    @Option(help: "Only this queue.") var queue: String?

    func validate() throws {
        guard completedOlderThan != nil || deadOlderThan != nil || cancelledOlderThan != nil else {
            throw ValidationError("Say what to delete: --completed-older-than, --dead-older-than or --cancelled-older-than (e.g. 7d).")
        }
        for age in [completedOlderThan, deadOlderThan, cancelledOlderThan].compactMap({ $0 }) { _ = try Self.milliseconds(age) }
    }

    func run() async throws {
        let passes: [([JobState], String?)] = [([.completed], completedOlderThan), ([.dead], deadOlderThan), ([.cancelled, .expired], cancelledOlderThan)]
        try await connection.perform({ client -> Summary in
            var deleted = 0
            for case let (states, age?) in passes {
                let params = Cleanup.Params(states: states, olderThanMs: try Self.milliseconds(age), queue: queue)
                var more = true
                while more {
                    let round = try await client.call(Cleanup.self, params)
                    deleted += round.deleted
                    more = round.more
                    FileHandle.standardError.write(Data("deleted \(deleted) jobs so far\n".utf8))
                }
            }
            return Summary(deleted: deleted)
        }) { "deleted \($0.deleted) finished jobs\n" }
    }

    /// What `cleanup` did, for `--json`.
    struct Summary: Encodable {
        let deleted: Int
    }

    static func milliseconds(_ age: String) throws -> Int64 {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, factor) in units where age.hasSuffix(suffix) {
            if let number = Int64(age.dropLast(suffix.count)), number >= 0 { return number * factor }
        }
        throw ValidationError("An age is a whole number and a unit (ms, s, m, h or d), such as 7d or 12h (got \(age)).")
    }
}
