/// Any JSON value, carried unchanged between clients and the store (job `args`, `meta`, `result`).
///
/// Integers that fit in 64 bits stay integers; other numbers travel as `Double`.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public static let emptyArray = JSONValue.array([])

    /// The JSON type's name as a person reads it in an error message ("expected an object, got a string").
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
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

    public var intValue: Int64? {
        switch self {
        case .int(let value): value
        case .double(let value) where value.rounded() == value && abs(value) < 9.2e18: Int64(value)
        default: nil
        }
    }

    /// Whether every number in it is finite: JSON has no infinity, so such a value could not be sent on.
    public var isFinite: Bool { nonFinitePath() == nil }

    /// Where the first number too large for a 64-bit float is (`args[0]`, `meta.n`), if there is one.
    public func nonFinitePath(_ prefix: String = "") -> String? {
        firstPath(prefix) { value in
            if case .double(let number) = value { return !number.isFinite }
            return false
        }
    }

    /// Where the first string (or object key) holding U+0000 is, if there is one: PostgreSQL stores no such
    /// character in text or jsonb.
    public func nulCharacterPath(_ prefix: String = "") -> String? {
        firstPath(prefix, key: { $0.utf8.contains(0) }) { value in
            if case .string(let text) = value { return text.utf8.contains(0) }
            return false
        }
    }

    /// The field path (`args[0]`, `meta.n`; `params` for the whole value) of the first value, or object key,
    /// the tests pick, walking arrays in order and objects by sorted key.
    private func firstPath(
        _ prefix: String, key isOffendingKey: (String) -> Bool = { _ in false }, _ isOffending: (JSONValue) -> Bool
    ) -> String? {
        if isOffending(self) { return prefix.isEmpty ? "params" : prefix }
        switch self {
        case .array(let values):
            for (index, value) in values.enumerated() {
                if let path = value.firstPath(prefix + "[\(index)]", key: isOffendingKey, isOffending) { return path }
            }
        case .object(let fields):
            for key in fields.keys.sorted() {
                let path = prefix.isEmpty ? key : prefix + "." + key
                if isOffendingKey(key) { return path }
                if let found = fields[key]!.firstPath(path, key: isOffendingKey, isOffending) { return found }
            }
        default:
            break
        }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let fields) = self { return fields }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }
}

extension JSONValue: Codable {
    /// Set to `true` in a decoder's `userInfo` when the decoder reads a scalar as whatever type it is asked for
    /// (YAML reads `10` as a string, if asked for one first): values are then tried as scalars before strings.
    public static let scalarsFirst = CodingUserInfoKey(rawValue: "gantry.JSONValue.scalarsFirst")!

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if decoder.userInfo[Self.scalarsFirst] as? Bool == true {
            self = try Self.decodeScalarsFirst(container, decoder)
        } else if let value = try? container.decode(String.self) {
            // JSON says what type a value is, so the commonest go first: every wrong guess costs a thrown error
            // (that cost was a quarter of the broker's CPU when objects were tried last).
            self = .string(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = Self.decodeDouble(container, decoder) {
            self = value
        } else {
            throw DecodingError.typeMismatch(JSONValue.self, .init(codingPath: decoder.codingPath, debugDescription: "not a JSON value"))
        }
    }

    private static func decodeScalarsFirst(_ container: any SingleValueDecodingContainer, _ decoder: any Decoder) throws -> JSONValue {
        if let value = try? container.decode(Bool.self) { return .bool(value) }
        if let value = try? container.decode(Int64.self) { return .int(value) }
        if let value = decodeDouble(container, decoder) { return value }
        if let value = try? container.decode(String.self) { return .string(value) }
        if let value = try? container.decode([JSONValue].self) { return .array(value) }
        return .object(try container.decode([String: JSONValue].self))
    }

    /// A number, if it is one. One beyond a 64-bit float (`1e999`) is read as infinity, so that params
    /// validation can refuse it naming its field, instead of the whole line failing as if it were not JSON.
    private static func decodeDouble(_ container: any SingleValueDecodingContainer, _ decoder: any Decoder) -> JSONValue? {
        do {
            return .double(try container.decode(Double.self))
        } catch DecodingError.typeMismatch {
            // Not a number at all (an array or an object): the common case, so no describing the error.
            return nil
        } catch {
            // Foundation reports it with an error type of its own, `numberIsNotRepresentableInSwift(parsed:)`.
            let text = String(describing: error)
            guard text.contains("NotRepresentable") else { return nil }
            (decoder.userInfo[NonFiniteNumbers.key] as? NonFiniteNumbers)?.note()
            return .double(text.contains(#"parsed: "-"#) ? -.infinity : .infinity)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
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
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}
