import Foundation
import Yams

/// A YAML config file: its scalar settings as text (for a `SettingTable`) and its sections (`cron:`,
/// `tokens:` …) decoded on demand into their own types.
public struct SettingsFile {
    public let path: String?
    /// Each key's value as text: a single value, or the items of a list of values, or a mapping of values as
    /// `name=value` items (how a list setting reads them). Keys holding anything deeper are sections.
    public let values: [String: [String]]
    private let text: String
    private let sectionKeys: Set<String>

    /// No file: nothing set.
    public init() {
        path = nil
        values = [:]
        text = ""
        sectionKeys = []
    }

    public init(path: String) throws(SettingProblem) {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw SettingProblem("Cannot read the config file \(path): \(error.localizedDescription)")
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw SettingProblem("The config file \(path) is not valid YAML: \(error)")
        }
        var values: [String: [String]] = [:]
        var sections: Set<String> = []
        if let root {
            guard let mapping = root.mapping else { throw SettingProblem("The config file \(path) must be a mapping of keys to values, such as listen: 127.0.0.1:7440.") }
            for (key, value) in mapping {
                guard let name = key.string else { continue }
                if let scalar = value.scalar {
                    values[name] = [scalar.string]
                } else if let items = value.sequence, items.allSatisfy({ $0.scalar != nil }) {
                    values[name] = items.compactMap { $0.scalar?.string }
                    sections.insert(name)
                } else if let pairs = value.mapping, pairs.allSatisfy({ $0.key.scalar != nil && $0.value.scalar != nil }) {
                    values[name] = pairs.compactMap { pair in pair.key.scalar.flatMap { key in pair.value.scalar.map { "\(key.string)=\($0.string)" } } }
                    sections.insert(name)
                } else {
                    sections.insert(name)
                }
            }
        }
        self.path = path
        self.values = values
        self.text = text
        self.sectionKeys = sections
    }

    /// Keys whose value is a list or mapping rather than a single value.
    public var sections: Set<String> { sectionKeys }

    /// Every top-level key of the file.
    public var keys: Set<String> { sectionKeys.union(values.keys) }

    /// Decodes the section at `key` (nil when the file has none), naming the key in the error.
    public func section<Section: Decodable>(_ key: String, as type: Section.Type, userInfo: [CodingUserInfoKey: Any] = [:]) throws(SettingProblem) -> Section? {
        guard sectionKeys.contains(key) || values[key] != nil else { return nil }
        var info = userInfo
        info[Self.sectionKey] = key
        do { return try YAMLDecoder().decode(SectionOf<Section>.self, from: text, userInfo: info).value } catch {
            throw SettingProblem("The config file's \(key): section is not valid: \(error)")
        }
    }

    static let sectionKey = CodingUserInfoKey(rawValue: "gantry.section")!
}

/// The file's mapping, read for one key only (named in the decoder's user info).
private struct SectionOf<Section: Decodable>: Decodable {
    let value: Section?

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        value = try container.decodeIfPresent(Section.self, forKey: AnyKey(decoder.userInfo[SettingsFile.sectionKey] as! String))
    }
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
