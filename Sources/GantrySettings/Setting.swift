import Foundation

/// One setting of a Gantry program, declared once: its name (the YAML key; `--name-with-dashes` on the command
/// line; `<PREFIX>NAME` in the environment), what it is for, and how its text is checked and applied to the
/// program's settings value. Its default is whatever that value holds before anything is applied, so help
/// and the README show the same default the code uses.
public struct Setting<Target>: Sendable {
    /// How a setting takes its text: one value, or a list (a flag given again, a YAML list or mapping, a
    /// comma-separated environment variable).
    public enum Values: Sendable {
        case one(@Sendable (inout Target, String) throws(SettingProblem) -> Void)
        /// `merged`: the file's items, then the environment's, then the flags' are all applied, so a later item
        /// overrides an earlier one of the same name (gantry-worker's handlers); otherwise the first source wins.
        case list(merged: Bool, @Sendable (inout Target, [String]) throws(SettingProblem) -> Void)
    }

    public let key: String
    /// What its value looks like in help (`MS`, `N`, `HOST:PORT`, `PATH`); nil for a switch that takes none.
    public let valueName: String?
    public let help: String
    /// Its current value in `Target` as text, for help and the README; nil when unset.
    let show: @Sendable (Target) -> String?
    let values: Values
    private let flagName: String?

    public init(_ key: String, _ valueName: String?, _ help: String,
                show: @escaping @Sendable (Target) -> String?,
                apply: @escaping @Sendable (inout Target, String) throws(SettingProblem) -> Void) {
        self.key = key
        self.valueName = valueName
        self.help = help
        self.show = show
        self.values = .one(apply)
        self.flagName = nil
    }

    /// A list setting; `flag` names its (repeatable) flag when that is not the key (`--queue` for `queues`).
    public init(list key: String, flag: String? = nil, _ valueName: String, _ help: String, merged: Bool = false,
                show: @escaping @Sendable (Target) -> String?,
                apply: @escaping @Sendable (inout Target, [String]) throws(SettingProblem) -> Void) {
        self.key = key
        self.valueName = valueName
        self.help = help
        self.show = show
        self.values = .list(merged: merged, apply)
        self.flagName = flag
    }

    public var flag: String { flagName ?? "--" + key.replacingOccurrences(of: "_", with: "-") }
    public var isList: Bool { if case .list = values { true } else { false } }
    public var isSwitch: Bool { valueName == nil }
    public func defaultText(_ defaults: Target) -> String? { show(defaults) }
}

/// A setting's value that cannot be used; `description` names the setting where the user gave it.
public struct SettingProblem: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Where a setting's text came from, so an error names what the user typed.
public enum SettingOrigin: Equatable, Sendable {
    case flag, environment(String), file

    func name<Target>(of setting: Setting<Target>) -> String {
        switch self {
        case .flag: setting.flag
        case .environment(let variable): variable
        case .file: "\(setting.key) in the config file"
        }
    }
}

/// The settings of one program, and how they are read: flag over environment over config file over default.
public struct SettingTable<Target>: Sendable {
    public let settings: [Setting<Target>]
    /// The environment's name for a key: this prefix, then the key in capitals (`GANTRYD_` + `MAX_WAIT_MS`).
    public let environmentPrefix: String
    /// Other environment names a setting answers to (a name older than the prefix), by key.
    public let environmentAliases: [String: [String]]

    public init(_ settings: [Setting<Target>], environmentPrefix: String, environmentAliases: [String: [String]] = [:]) {
        self.settings = settings
        self.environmentPrefix = environmentPrefix
        self.environmentAliases = environmentAliases
    }

    public func setting(_ key: String) -> Setting<Target>? { settings.first { $0.key == key } }

    public func environmentVariables(for setting: Setting<Target>) -> [String] {
        [environmentPrefix + setting.key.uppercased()] + (environmentAliases[setting.key] ?? [])
    }

    /// Splits command-line words into setting texts by key: `--name value`, `--name=value`, `--switch`; a list
    /// setting's flag may come again, the others' last value counts.
    public func parseFlags(_ words: [String]) throws(SettingProblem) -> [String: [String]] {
        var texts: [String: [String]] = [:]
        func add(_ setting: Setting<Target>, _ text: String) {
            if setting.isList { texts[setting.key, default: []].append(text) } else { texts[setting.key] = [text] }
        }
        var index = 0
        while index < words.count {
            let word = words[index]
            index += 1
            guard word.hasPrefix("--") else {
                throw SettingProblem("Unexpected \"\(word)\": settings are flags such as \(settings.first.map { "\($0.flag) \($0.valueName ?? "")" } ?? "--name VALUE") (see --help).")
            }
            let body = word.dropFirst(2)
            let (name, inline) = body.firstIndex(of: "=").map { (String(body[..<$0]), String(body[body.index(after: $0)...])) } ?? (String(body), nil)
            guard let setting = settings.first(where: { $0.flag == "--" + name }) else {
                throw SettingProblem("Unknown flag --\(name); the settings are \(settings.map(\.flag).joined(separator: ", ")) (see --help).")
            }
            if setting.isSwitch {
                add(setting, inline ?? "true")
            } else if let inline {
                add(setting, inline)
            } else {
                guard index < words.count else { throw SettingProblem("\(setting.flag) needs a value (\(setting.valueName ?? "")).") }
                add(setting, words[index])
                index += 1
            }
        }
        return texts
    }

    /// Applies every setting given, each from the first of flag, environment and file that has it (a merged list
    /// from all three). A file key no setting has is refused, so a misspelt one is not silently ignored.
    public func apply(to target: inout Target, flags: [String: [String]], environment: [String: String],
                      file: SettingsFile, fileSections: Set<String> = []) throws(SettingProblem) {
        for key in file.keys.sorted() where setting(key) == nil && !fileSections.contains(key) {
            let known = (settings.map(\.key) + fileSections.sorted()).joined(separator: ", ")
            throw SettingProblem("The config file has an unknown key \(key); the keys are \(known).")
        }
        for setting in settings {
            let fromEnvironment: (SettingOrigin, [String])? = environmentVariables(for: setting).lazy.compactMap { name in
                environment[name].flatMap { text in
                    text.isEmpty ? nil : (SettingOrigin.environment(name), setting.isList ? text.split(separator: ",").map(String.init) : [text])
                }
            }.first
            let sources: [(SettingOrigin, [String])] = [
                flags[setting.key].map { (.flag, $0) }, fromEnvironment, file.values[setting.key].map { (.file, $0) },
            ].compactMap { $0 }
            guard let first = sources.first else { continue }
            do {
                switch setting.values {
                case .one(let apply):
                    try apply(&target, first.1.last ?? "")
                case .list(let merged, let apply):
                    try apply(&target, merged ? sources.reversed().flatMap(\.1) : first.1)
                }
            } catch {
                throw SettingProblem("\(first.0.name(of: setting)) \(error.description)")
            }
        }
    }

    /// One paragraph per setting, for `--help`: flag and value, environment variables and default, then what it does.
    public func helpText(defaults: Target) -> String {
        settings.map { setting in
            let value = setting.valueName.map { " \($0)" } ?? ""
            let fallback = setting.defaultText(defaults).map { "; default \($0)" } ?? ""
            return "\(setting.flag)\(value) (\(environmentVariables(for: setting).joined(separator: ", "))\(fallback)): \(setting.help)"
        }.joined(separator: "\n\n")
    }
}
