import GantryProtocol
import GantrySettings

/// Everything gantry-worker is told; its defaults are the defaults, and `table` declares every setting once:
/// flag, environment variable (`GANTRY_WORKER_` + key), YAML key, check.
struct WorkerSettings: Sendable {
    var broker = "127.0.0.1:7440"
    var queues = [ProtocolDefaults.queue]
    var concurrency = 4
    /// Job type → the shell command run for it.
    var handlers: [String: String] = [:]
    var timeout: Duration = .seconds(30 * 60)
    var logLevel = "info"

    typealias Entry = Setting<WorkerSettings>

    static let table = SettingTable<WorkerSettings>([
        Entry("broker", "URL", "The broker, as host:port or gantry://host:port (gantrys:// for TLS).", show: { $0.broker }) { settings, text in
            settings.broker = text
        },
        Entry(list: "queues", flag: "--queue", "NAME", "A queue to work, in priority order; repeat the flag for several.",
              show: { $0.queues.joined(separator: ",") }) { settings, names throws(SettingProblem) in
            guard !names.isEmpty, !names.contains(where: \.isEmpty) else { throw SettingProblem("must name at least one queue, and no empty one.") }
            settings.queues = names
        },
        Entry("concurrency", "N", "How many commands may run at once.", show: { "\($0.concurrency)" }) { settings, text throws(SettingProblem) in
            settings.concurrency = try SettingValue.integer(text, atLeast: 1)
        },
        Entry(list: "handlers", flag: "--handler", "TYPE=COMMAND",
              "Run COMMAND (with /bin/sh -c) for jobs of TYPE; repeat for several types. The file's handlers: maps TYPE to COMMAND; a flag for the same type wins.",
              merged: true, show: { _ in nil }) { settings, items throws(SettingProblem) in
            for item in items {
                guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                    throw SettingProblem("takes TYPE=COMMAND, such as --handler email.send='python3 send.py', got \"\(item.prefix(60))\".")
                }
                settings.handlers[String(item[..<equals])] = String(item[item.index(after: equals)...])
            }
        },
        Entry("timeout_ms", "MS", "Kill a command that runs longer than this (SIGTERM to its process group, SIGKILL 5 s later).",
              show: { SettingValue.showMilliseconds($0.timeout) }) { settings, text throws(SettingProblem) in
            settings.timeout = try SettingValue.milliseconds(text, atLeast: 1)
        },
        Entry("log_level", "LEVEL", "trace, debug, info, notice, warning, error or critical.", show: { $0.logLevel }) { settings, text throws(SettingProblem) in
            settings.logLevel = try SettingValue.oneOf(text, ["trace", "debug", "info", "notice", "warning", "error", "critical"])
        },
    ], environmentPrefix: "GANTRY_WORKER_", environmentAliases: ["broker": ["GANTRY_URL"]])

    /// Flags over environment over file over defaults (handlers merged from all three), every value checked.
    static func resolve(flags words: [String], configFile path: String?, environment: [String: String]) throws(SettingProblem) -> WorkerSettings {
        let file = try path.map { path throws(SettingProblem) in try SettingsFile(path: path) } ?? SettingsFile()
        var settings = WorkerSettings()
        try table.apply(to: &settings, flags: try table.parseFlags(words), environment: environment, file: file)
        guard !settings.handlers.isEmpty else {
            throw SettingProblem("Give at least one --handler TYPE=COMMAND (or handlers: in --config), so the worker knows what to run.")
        }
        return settings
    }
}
