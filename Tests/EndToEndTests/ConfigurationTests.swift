import Foundation
import GantryProtocol
import GantryTesting
import Testing

/// How operators point gantryd at its database and settings: flags, environment, YAML, `gantryd migrate`.
@Suite(.deadline(.seconds(300))) struct ConfigurationTests {
    @Test func migrateRunsOnceFromTheEnvironmentsDatabaseURL() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let first = try await runGantryd(["migrate"], environment: ["GANTRY_DATABASE_URL": url])
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.contains("applied migrations 1"))
        let second = try await runGantryd(["migrate", "--database-url", url])
        #expect(second.status == 0)
        #expect(second.output.contains("up to date"))

        // A broker told not to migrate serves the migrated schema.
        let broker = try await BrokerProcess(databaseURL: url, extraArguments: ["--no-migrate"])
        let client = try await broker.connect()
        #expect(try await client.call("enqueue", ["type": "x"]).error == nil)
    }

    @Test func aYAMLFileSetsWhatFlagsDoNot() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-\(UUID().uuidString).yml")
        defer { try? FileManager.default.removeItem(at: file) }
        try """
            database_url: "\(url)"
            max_line_bytes: 2048
            listen: 127.0.0.1:1
            """.write(to: file, atomically: true, encoding: .utf8)
        // --listen (added by the harness) overrides the file's listen; the file's line limit applies.
        let broker = try await BrokerProcess(arguments: ["--config", file.path])
        let client = try await broker.connect()
        try await client.send(#"{"jsonrpc":"2.0","id":1,"method":"enqueue","params":{"type":""# + String(repeating: "x", count: 3000) + #""}}"#)
        #expect(try await client.nextLine()?.contains("-32006") == true)
    }

    @Test func badSettingsAreRefusedWithAReason() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-\(UUID().uuidString).yml")
        defer { try? FileManager.default.removeItem(at: file) }
        try "max_line_bytes: lots\n".write(to: file, atomically: true, encoding: .utf8)
        let bad = try await runGantryd(["--config", file.path])
        #expect(bad.status != 0)
        #expect(bad.output.contains("max_line_bytes"))

        let url = try await runGantryd(["migrate", "--database-url", "mysql://nope"])
        #expect(url.status != 0)
        #expect(url.output.contains("postgres://"))
    }
}
