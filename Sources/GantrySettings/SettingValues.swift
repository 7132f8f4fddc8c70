/// Readers for setting texts; each throws the rest of a sentence that starts with the setting's name.
public enum SettingValue {
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
