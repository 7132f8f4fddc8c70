/// Readers for setting texts; each throws the rest of a sentence that starts with the setting's name.
public enum SettingValue {
    /// swift-log's levels, for a `log_level` setting.
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    public static func integer<Value: FixedWidthInteger>(_ text: String, _: Value.Type = Value.self, atLeast minimum: Value) throws(SettingProblem) -> Value {
        guard let value = Value(text.trimmingSpaces) else { throw SettingProblem("must be a whole number, got \"\(text.prefix(40))\".") }
        guard value >= minimum else { throw SettingProblem("must be at least \(minimum), got \(value).") }
        return value
    }

    public static func integer<Value: FixedWidthInteger>(_ text: String, _: Value.Type = Value.self, within allowed: ClosedRange<Value>) throws(SettingProblem) -> Value {
        guard let value = Value(text.trimmingSpaces) else { throw SettingProblem("must be a whole number, got \"\(text.prefix(40))\".") }
        guard allowed.contains(value) else { throw SettingProblem("must be between \(allowed.lowerBound) and \(allowed.upperBound), got \(value).") }
        return value
    }

    public static func milliseconds(_ text: String, atLeast minimum: Int64) throws(SettingProblem) -> Duration {
        .milliseconds(try integer(text, Int64.self, atLeast: minimum))
    }

    public static func boolean(_ text: String) throws(SettingProblem) -> Bool {
        switch text.trimmingSpaces.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw SettingProblem("must be true or false, got \"\(text.prefix(40))\".")
        }
    }

    public static func oneOf(_ text: String, _ choices: [String]) throws(SettingProblem) -> String {
        guard choices.contains(text) else { throw SettingProblem("must be one of \(choices.joined(separator: ", ")), got \"\(text.prefix(40))\".") }
        return text
    }

    /// `host:port`, `:port` or `port`; an empty host means every address.
    public static func address(_ text: String, example: String) throws(SettingProblem) -> (host: String, port: Int) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let host = parts.count > 1 ? parts.dropLast().joined(separator: ":") : "127.0.0.1"
        guard let portText = parts.last, let port = Int(portText), (0...65535).contains(port) else {
            throw SettingProblem("must be host:port, such as \(example), got \"\(text.prefix(60))\".")
        }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    /// Whole seconds print as such, so help reads `10000` for ten seconds in ms.
    public static func showMilliseconds(_ duration: Duration) -> String {
        String(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
}

extension String {
    var trimmingSpaces: Substring {
        var text = self[...]
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return text
    }
}

/// The common kinds of setting, each stored at a key path of the program's settings value.
extension Setting {
    /// A whole number of at least `minimum`.
    public static func integer<Value: FixedWidthInteger & Sendable>(
        _ key: String, value valueName: String = "N", _ help: String, _ path: WritableKeyPath<Target, Value> & Sendable, atLeast minimum: Value
    ) -> Setting {
        Setting(key, valueName, help, show: { "\($0[keyPath: path])" }) { target, text throws(SettingProblem) in
            target[keyPath: path] = try SettingValue.integer(text, atLeast: minimum)
        }
    }

    /// A whole number within `allowed`.
    public static func integer<Value: FixedWidthInteger & Sendable>(
        _ key: String, value valueName: String = "N", _ help: String, _ path: WritableKeyPath<Target, Value> & Sendable, within allowed: ClosedRange<Value>
    ) -> Setting {
        Setting(key, valueName, help, show: { "\($0[keyPath: path])" }) { target, text throws(SettingProblem) in
            target[keyPath: path] = try SettingValue.integer(text, within: allowed)
        }
    }

    /// A duration given in milliseconds, of at least `minimum`.
    public static func milliseconds(_ key: String, _ help: String, _ path: WritableKeyPath<Target, Duration> & Sendable, atLeast minimum: Int64) -> Setting {
        Setting(key, "MS", help, show: { SettingValue.showMilliseconds($0[keyPath: path]) }) { target, text throws(SettingProblem) in
            target[keyPath: path] = try SettingValue.milliseconds(text, atLeast: minimum)
        }
    }

    /// Free text, such as a path.
    public static func text(_ key: String, _ valueName: String, _ help: String, _ path: WritableKeyPath<Target, String> & Sendable) -> Setting {
        Setting(key, valueName, help, show: { $0[keyPath: path] }) { target, text in target[keyPath: path] = text }
    }

    /// Free text that has no default.
    public static func text(_ key: String, _ valueName: String, _ help: String, _ path: WritableKeyPath<Target, String?> & Sendable) -> Setting {
        Setting(key, valueName, help, show: { $0[keyPath: path] }) { target, text in target[keyPath: path] = text }
    }

    /// One of `choices`.
    public static func choice(_ key: String, _ valueName: String, _ help: String, _ path: WritableKeyPath<Target, String> & Sendable, _ choices: [String]) -> Setting {
        Setting(key, valueName, help, show: { $0[keyPath: path] }) { target, text throws(SettingProblem) in
            target[keyPath: path] = try SettingValue.oneOf(text, choices)
        }
    }
}
