import Foundation
@testable import GantryBroker
import GantryProtocol
import GantrySettings
import GantryTesting
import Testing

/// gantryd's settings, read the way gantryd reads them, without starting it.
@Suite(.deadline(.seconds(60))) struct SettingsTests {
    func withFile<T>(_ yaml: String, _ body: (String) throws -> T) throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-settings-\(UUID().uuidString).yml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }

    func problem(_ body: () throws -> Any) -> String? {
        do { _ = try body(); return nil } catch let problem as SettingProblem { return problem.description } catch { return "\(error)" }
    }

    @Test func nothingGivenMeansTheDefaults() throws {
        let settings = try GantrydSettings.resolve(flags: [], configFile: nil, environment: [:])
        #expect(settings.broker.host == "127.0.0.1" && settings.broker.port == 7440)
        #expect(settings.httpPort == 7441)
        #expect(settings.broker.maxLineBytes == 1 << 20)
        #expect(settings.broker.drainGrace == .seconds(10))
        #expect(settings.databaseURL == nil && settings.dataDirectory == ".gantry")
    }

    @Test func aFlagWinsOverTheEnvironmentWhichWinsOverTheFile() throws {
        try withFile("max_line_bytes: 2048\ndrain_grace_ms: 500\nmax_wait_ms: 1000\nlisten: 127.0.0.1:1\n") { path in
            let environment = ["GANTRYD_DRAIN_GRACE_MS": "700", "GANTRYD_MAX_WAIT_MS": "2000"]
            let settings = try GantrydSettings.resolve(flags: ["--max-wait-ms", "3000", "--listen=127.0.0.1:0"], configFile: path, environment: environment)
            #expect(settings.broker.maxLineBytes == 2048, "the file's, nothing else gave it")
            #expect(settings.broker.drainGrace == .milliseconds(700), "the environment's over the file's")
            #expect(settings.broker.maxWaitMs == 3000, "the flag's over both")
            #expect(settings.broker.port == 0)
        }
        let legacy = try GantrydSettings.resolve(flags: [], configFile: nil, environment: ["GANTRY_DATABASE_URL": "postgres://a@b/c"])
        #expect(legacy.databaseURL == "postgres://a@b/c", "GANTRY_DATABASE_URL still stands in for --database-url")
    }

    @Test func aBadValueIsRefusedNamingWhereItWasGiven() throws {
        #expect(problem { try GantrydSettings.resolve(flags: ["--max-line-bytes", "10"], configFile: nil, environment: [:]) }
            == "--max-line-bytes must be at least 1024, got 10.")
        #expect(problem { try GantrydSettings.resolve(flags: [], configFile: nil, environment: ["GANTRYD_IDLE_TIMEOUT_MS": "5"]) }
            == "GANTRYD_IDLE_TIMEOUT_MS must be 0 (never) or at least 1000, got 5.")
        try withFile("max_line_bytes: lots\n") { path in
            #expect(problem { try GantrydSettings.resolve(flags: [], configFile: path, environment: [:]) }
                == #"max_line_bytes in the config file must be a whole number, got "lots"."#)
        }
        #expect(problem { try GantrydSettings.resolve(flags: ["--listen", "nowhere"], configFile: nil, environment: [:]) }?
            .contains("must be host:port") == true)
        #expect(problem { try GantrydSettings.resolve(flags: ["--log-format", "xml"], configFile: nil, environment: [:]) }?
            .contains("must be one of text, json") == true)
        #expect(problem { try GantrydSettings.resolve(flags: ["--max-line-bytes"], configFile: nil, environment: [:]) }
            == "--max-line-bytes needs a value (N).")
    }

    @Test func unknownFlagsAndFileKeysAreRefusedNotIgnored() throws {
        #expect(problem { try GantrydSettings.resolve(flags: ["--max-lines", "3"], configFile: nil, environment: [:]) }?
            .hasPrefix("Unknown flag --max-lines; the settings are --listen") == true)
        try withFile("max_line_byte: 2048\n") { path in
            #expect(problem { try GantrydSettings.resolve(flags: [], configFile: path, environment: [:]) }?
                .hasPrefix("The config file has an unknown key max_line_byte; the keys are listen, http") == true)
        }
    }

    @Test func settingsThatDependOnEachOtherAreCheckedTogether() {
        #expect(problem { try GantrydSettings.resolve(flags: ["--tls-cert", "a.pem"], configFile: nil, environment: [:]) }
            == "TLS needs both --tls-cert and --tls-key (PEM files).")
        #expect(problem { try GantrydSettings.resolve(flags: ["--listen", "0.0.0.0:7440"], configFile: nil, environment: [:]) }?
            .contains("would accept anyone") == true)
        #expect(problem { try GantrydSettings.resolve(flags: ["--listen", "0.0.0.0:7440", "--allow-unauthenticated"], configFile: nil, environment: [:]) } == nil)
        #expect(problem { try GantrydSettings.resolve(flags: [], configFile: nil, environment: ["GANTRY_WORKER_TOKEN": "short"]) }?
            .contains("shorter than 16 characters") == true)
    }

    /// The README's table of settings is the one declaration, printed: a setting added, renamed or given a new
    /// default fails here until the README says so.
    @Test func theReadmeListsEverySettingWithItsDefault() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let expected = Self.markdownTable()
        #expect(readme.contains(expected), "README.md should hold this table under gantryd's settings:\n\(expected)")
    }

    static func markdownTable() -> String {
        let table = GantrydSettings.table
        let defaults = GantrydSettings()
        var lines = ["| flag | environment | default | what it does |", "|---|---|---|---|"]
        for setting in table.settings {
            let flag = "`\(setting.flag)\(setting.valueName.map { " \($0)" } ?? "")`"
            let environment = table.environmentVariables(for: setting).map { "`\($0)`" }.joined(separator: ", ")
            lines.append("| \(flag) | \(environment) | \(setting.defaultText(defaults).map { "`\($0)`" } ?? "none") | \(setting.help) |")
        }
        return lines.joined(separator: "\n")
    }
}
