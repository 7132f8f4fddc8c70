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
    /// A folder of package step files (`report.fetch.py` runs steps of type report.fetch).
    var packageDir: String?
    /// What `*.sql` step files run against.
    var sqlURL: String?
    var timeout: Duration = .seconds(30 * 60)
    /// Where `/live` and `/ready` are served (on 127.0.0.1); none by default.
    var healthPort: Int?
    var drainTimeout: Duration = .seconds(30)
    var logLevel = "info"

    typealias Entry = Setting<WorkerSettings>

    static let table = SettingTable<WorkerSettings>([
        .text("broker", "URL", "The broker, as host:port or gantry://host:port (gantrys:// for TLS).", \.broker),
        Entry(list: "queues", flag: "--queue", "NAME", "A queue to work, in priority order; repeat the flag for several.",
              show: { $0.queues.joined(separator: ",") }) { settings, names throws(SettingProblem) in
            guard !names.isEmpty, !names.contains(where: \.isEmpty) else { throw SettingProblem("must name at least one queue, and no empty one.") }
            settings.queues = names
        },
        .integer("concurrency", "How many commands may run at once.", \.concurrency, atLeast: 1),
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
        .text("package_dir", "DIR",
              "Run package steps from DIR: a step's type names its file (report.fetch.py, .sql, .sh, or an executable named report.fetch); a subfolder named after a package serves that package first.",
              \.packageDir),
        .text("sql_url", "URL", "The PostgreSQL URL psql runs *.sql step files against (postgres://user@host/db).", \.sqlURL),
        .milliseconds("timeout_ms", "Kill a command that runs longer than this (SIGTERM to its process group, SIGKILL 5 s later).",
                      \.timeout, atLeast: 1),
        Entry("health_port", "PORT", "Serve GET /live (the worker loop runs) and GET /ready (connected and taking jobs) on 127.0.0.1:PORT, for a supervisor's probes.",
              show: { $0.healthPort.map(String.init) }) { settings, text throws(SettingProblem) in
            settings.healthPort = try SettingValue.integer(text, within: 1...65535)
        },
        .milliseconds("drain_timeout_ms", "On SIGTERM, how long running commands may finish before they are stopped and their jobs handed back.",
                      \.drainTimeout, atLeast: 0),
        .choice("log_level", "LEVEL", "trace, debug, info, notice, warning, error or critical.", \.logLevel, SettingValue.logLevels),
    ], environmentPrefix: "GANTRY_WORKER_", environmentAliases: ["broker": ["GANTRY_URL"]])

    /// Flags over environment over file over defaults (handlers merged from all three), every value checked.
    static func resolve(flags words: [String], configFile path: String?, environment: [String: String]) throws(SettingProblem) -> WorkerSettings {
        let file = try path.map { path throws(SettingProblem) in try SettingsFile(path: path) } ?? SettingsFile()
        var settings = WorkerSettings()
        try table.apply(to: &settings, flags: try table.parseFlags(words), environment: environment, file: file)
        guard !settings.handlers.isEmpty || settings.packageDir != nil else {
            throw SettingProblem("Give at least one --handler TYPE=COMMAND (or handlers: in --config), or --package-dir DIR, so the worker knows what to run.")
        }
        return settings
    }
}
