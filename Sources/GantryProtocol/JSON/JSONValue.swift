// Re-exported: `JSONObject` is an `OrderedDictionary`, and every user of JSON values works with its members.
@_exported import OrderedCollections

/// A JSON object's members in the order they were written.
public typealias JSONObject = OrderedDictionary<String, JSONValue>

/// Any JSON value, carried between clients and the store spelled as it was sent (job `args`, `meta`, `result`):
/// members keep their order and every number keeps its spelling, so `1.0` never comes back as `1`.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    /// An integer that Swift spells as it was written (`7`, `-12`).
    case int(Int64)
    /// A number that Swift spells as it was written (`1.5`, `1e-07`).
    case double(Double)
    /// Any other number, kept exactly as written: `1.0`, `-0`, `1E3`, `123456789012345678901234`, `1e999`.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public static let emptyArray = JSONValue.array([])

    /// The JSON type's name as a person reads it in an error message ("expected an object, got a string").
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double, .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The number as an Int64, when it is a whole number in range (`5`, `5.0`, `5e0`).
    public var intValue: Int64? {
        switch self {
        case .int(let value): value
        case .double(let value): Self.wholeNumber(value)
        case .number(let text): Int64(text) ?? Double(text).flatMap(Self.wholeNumber)
        default: nil
        }
    }

    /// The number as the nearest Double (infinite for one beyond a Double's range).
    public var doubleValue: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        case .number(let text): Double(text)
        default: nil
        }
    }

    private static func wholeNumber(_ value: Double) -> Int64? {
        value.rounded() == value && abs(value) < 9.2e18 ? Int64(value) : nil
    }

    /// Where the first value PostgreSQL cannot store is, and what is wrong with it: a string (or object key)
    /// holding U+0000, which no text or jsonb holds, or a number beyond what `numeric` holds (more than 131,072
    /// digits before the point or 16,383 after it), which args' jsonb index cannot take.
    public func unstorable(_ prefix: String = "") -> (path: String, problem: String)? {
        switch self {
        case .string(let text) where text.utf8.contains(0):
            return (prefix.isEmpty ? "params" : prefix, Self.nulProblem)
        case .number(let text) where Self.beyondNumeric(text):
            return (prefix.isEmpty ? "params" : prefix, "is \(text.prefix(24))…, a number beyond what PostgreSQL stores (131,072 digits before the point, 16,383 after); send it as a string")
        case .array(let values):
            for (index, value) in values.enumerated() {
                if let found = value.unstorable(prefix + "[\(index)]") { return found }
            }
        case .object(let fields):
            for (key, value) in fields {
                let path = prefix.isEmpty ? key : prefix + "." + key
                if key.utf8.contains(0) { return (path, Self.nulProblem) }
                if let found = value.unstorable(path) { return found }
            }
        default:
            break
        }
        return nil
    }

    static let nulProblem = "holds the character U+0000 (\\u0000), which PostgreSQL cannot store; remove it, or encode the data (base64, say)"

    /// Whether a number spelled `text` has more digits before or after its point than `numeric` allows. Only
    /// numbers kept as spelled (`.number`) can: the others fit a Double or an Int64.
    public static func beyondNumeric(_ text: String) -> Bool {
        let parts = text.lowercased().split(separator: "e", maxSplits: 1)
        let bound = Int.max / 4  // an exponent too long for Int is still far beyond either limit
        let exponent = parts.count == 2 ? Int(parts[1]) ?? (parts[1].hasPrefix("-") ? -bound : bound) : 0
        let halves = parts[0].drop { $0 == "-" || $0 == "+" }.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let digits = Array(halves[0]) + (halves.count == 2 ? Array(halves[1]) : [])
        guard let first = digits.firstIndex(where: { $0 != "0" }), let last = digits.lastIndex(where: { $0 != "0" }) else {
            return false  // zero, however written
        }
        // Where the point falls among the significant digits, once the exponent has moved it.
        let point = max(-bound, min(bound, halves[0].count + exponent)) - first
        let significant = last - first + 1
        return point > 131_072 || significant - point > 16_383
    }

    public var objectValue: JSONObject? {
        if case .object(let fields) = self { return fields }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }
}

// Objects are equal whatever their members' order (JSON gives the order no meaning); numbers are equal when
// spelled alike, as the wire keeps them.
extension JSONValue: Hashable {
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.double(let a), .double(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)):
            a.count == b.count && a.allSatisfy { key, value in b[key] == value }
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let value): hasher.combine(value)
        case .int(let value): hasher.combine(value)
        case .double(let value): hasher.combine(value)
        case .number(let text): hasher.combine(text)
        case .string(let value): hasher.combine(value)
        case .array(let values): hasher.combine(values)
        case .object(let fields):
            // Order-free: the members' own hashes, summed.
            var sum = 0
            for (key, value) in fields {
                var member = Hasher()
                member.combine(key)
                member.combine(value)
                sum &+= member.finalize()
            }
            hasher.combine(fields.count)
            hasher.combine(sum)
        }
    }
}

extension JSONValue: Codable {
    /// Set to `true` in a decoder's `userInfo` when the decoder reads a scalar as whatever type it is asked for
    /// (YAML reads `10` as a string, if asked for one first): values are then tried as scalars before strings.
    public static let scalarsFirst = CodingUserInfoKey(rawValue: "gantry.JSONValue.scalarsFirst")!

    public init(from decoder: any Decoder) throws {
        if let reader = decoder as? JSONValueDecoder.Reader {
            self = reader.value
            return
        }
        // Another decoder (YAML settings files): the value is rebuilt from what that decoder offers.
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if decoder.userInfo[Self.scalarsFirst] as? Bool == true {
            self = try Self.decodeScalarsFirst(container)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(Self.sortedObject(value))
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else {
            self = .double(try container.decode(Double.self))
        }
    }

    private static func decodeScalarsFirst(_ container: any SingleValueDecodingContainer) throws -> JSONValue {
        if let value = try? container.decode(Bool.self) { return .bool(value) }
        if let value = try? container.decode(Int64.self) { return .int(value) }
        if let value = try? container.decode(Double.self) { return .double(value) }
        if let value = try? container.decode(String.self) { return .string(value) }
        if let value = try? container.decode([JSONValue].self) { return .array(value) }
        return .object(sortedObject(try container.decode([String: JSONValue].self)))
    }

    /// An object from an unordered dictionary, its members sorted so that the result does not vary from run to run.
    public static func sortedObject(_ members: [String: JSONValue]) -> JSONObject {
        JSONObject(uniqueKeysWithValues: members.sorted { $0.key < $1.key })
    }

    public func encode(to encoder: any Encoder) throws {
        if let writer = encoder as? JSONValueEncoder.Writer {
            writer.store(self)
            return
        }
        // Another encoder cannot write a number as spelled: it gets the nearest Double, or the text if there is none.
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .number(let text):
            if let value = Double(text), value.isFinite { try container.encode(value) } else { try container.encode(text) }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let fields): try container.encode(Dictionary(uniqueKeysWithValues: fields.map { ($0.key, $0.value) }))
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}
