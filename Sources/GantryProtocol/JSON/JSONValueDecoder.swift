import Foundation

/// Reads any `Decodable` from a `JSONValue`, with the wire's conventions (RFC 3339 timestamps; an integer field
/// takes `5` or `5.0` but not `5.5`). A `JSONValue` member is handed over as it is, spelling and order intact.
/// Errors are `DecodingError`s with the field's coding path, which `GantryJSON.describe` words.
public enum JSONValueDecoder {
    public static func decode<Value: Decodable>(_ type: Value.Type, from value: JSONValue) throws -> Value {
        try unbox(value, as: type, codingPath: [])
    }

    static func unbox<Value: Decodable>(_ value: JSONValue, as type: Value.Type, codingPath: [any CodingKey]) throws -> Value {
        if type == JSONValue.self { return value as! Value }
        if type == String.self { return try string(value, codingPath) as! Value }
        if type == Date.self { return try date(value, codingPath) as! Value }
        return try Value(from: Reader(value: value, codingPath: codingPath))
    }

    static func string(_ value: JSONValue, _ codingPath: [any CodingKey]) throws -> String {
        if case .string(let text) = value { return text }
        throw mismatch(String.self, value, codingPath)
    }

    static func bool(_ value: JSONValue, _ codingPath: [any CodingKey]) throws -> Bool {
        if case .bool(let flag) = value { return flag }
        throw mismatch(Bool.self, value, codingPath)
    }

    static func integer<Integer: FixedWidthInteger>(_ value: JSONValue, as type: Integer.Type, _ codingPath: [any CodingKey]) throws -> Integer {
        if let whole = value.intValue, let result = Integer(exactly: whole) { return result }
        if case .number(let text) = value, let result = Integer(text) { return result }
        throw mismatch(type, value, codingPath)
    }

    static func double(_ value: JSONValue, _ codingPath: [any CodingKey]) throws -> Double {
        if let number = value.doubleValue, number.isFinite { return number }
        throw mismatch(Double.self, value, codingPath)
    }

    static func date(_ value: JSONValue, _ codingPath: [any CodingKey]) throws -> Date {
        let text = try string(value, codingPath)
        guard let date = GantryJSON.parseTimestamp(text) else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: codingPath, debugDescription: "must be an RFC 3339 timestamp such as 2026-01-31T09:30:00Z, got \"\(text)\""))
        }
        return date
    }

    static func mismatch(_ type: Any.Type, _ value: JSONValue, _ codingPath: [any CodingKey]) -> DecodingError {
        if value == .null {
            return .valueNotFound(type, .init(codingPath: codingPath, debugDescription: "expected a value, got null"))
        }
        return .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "got \(value.typeName)"))
    }

    final class Reader: Decoder {
        let value: JSONValue
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        init(value: JSONValue, codingPath: [any CodingKey]) {
            self.value = value
            self.codingPath = codingPath
        }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            guard case .object(let members) = value else { throw mismatch([String: Any].self, value, codingPath) }
            return KeyedDecodingContainer(KeyedReader<Key>(members: members, codingPath: codingPath))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            guard case .array(let elements) = value else { throw mismatch([Any].self, value, codingPath) }
            return UnkeyedReader(elements: elements, codingPath: codingPath)
        }

        func singleValueContainer() throws -> any SingleValueDecodingContainer {
            SingleReader(value: value, codingPath: codingPath)
        }
    }

    struct KeyedReader<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let members: JSONObject
        let codingPath: [any CodingKey]

        var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

        func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

        private func member(_ key: Key) throws -> JSONValue {
            guard let value = members[key.stringValue] else {
                throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no member \"\(key.stringValue)\""))
            }
            return value
        }

        func decodeNil(forKey key: Key) throws -> Bool { try member(key) == .null }
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try bool(member(key), codingPath + [key]) }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { try string(member(key), codingPath + [key]) }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try double(member(key), codingPath + [key]) }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try double(member(key), codingPath + [key])) }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try integer(member(key), as: type, codingPath + [key]) }
        func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try integer(member(key), as: type, codingPath + [key]) }
        func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try integer(member(key), as: type, codingPath + [key]) }
        func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try integer(member(key), as: type, codingPath + [key]) }
        func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try integer(member(key), as: type, codingPath + [key]) }
        func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try integer(member(key), as: type, codingPath + [key]) }
        func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try integer(member(key), as: type, codingPath + [key]) }
        func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try integer(member(key), as: type, codingPath + [key]) }
        func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try integer(member(key), as: type, codingPath + [key]) }
        func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try integer(member(key), as: type, codingPath + [key]) }

        func decode<Value: Decodable>(_ type: Value.Type, forKey key: Key) throws -> Value {
            try unbox(member(key), as: type, codingPath: codingPath + [key])
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            try Reader(value: member(key), codingPath: codingPath + [key]).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try Reader(value: member(key), codingPath: codingPath + [key]).unkeyedContainer()
        }

        func superDecoder() throws -> any Decoder {
            Reader(value: members["super"] ?? .null, codingPath: codingPath + [IndexKey(name: "super")])
        }

        func superDecoder(forKey key: Key) throws -> any Decoder {
            Reader(value: members[key.stringValue] ?? .null, codingPath: codingPath + [key])
        }
    }

    struct UnkeyedReader: UnkeyedDecodingContainer {
        let elements: [JSONValue]
        let codingPath: [any CodingKey]
        private(set) var currentIndex = 0

        init(elements: [JSONValue], codingPath: [any CodingKey]) {
            self.elements = elements
            self.codingPath = codingPath
        }

        var count: Int? { elements.count }
        var isAtEnd: Bool { currentIndex >= elements.count }

        private mutating func next<Value>(_ type: Value.Type, _ read: (JSONValue, [any CodingKey]) throws -> Value) throws -> Value {
            let path = codingPath + [IndexKey(currentIndex)]
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(type, .init(codingPath: path, debugDescription: "the array has no more elements"))
            }
            let value = try read(elements[currentIndex], path)
            currentIndex += 1
            return value
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, elements[currentIndex] == .null else { return false }
            currentIndex += 1
            return true
        }

        mutating func decode(_ type: Bool.Type) throws -> Bool { try next(type, bool) }
        mutating func decode(_ type: String.Type) throws -> String { try next(type, string) }
        mutating func decode(_ type: Double.Type) throws -> Double { try next(type, double) }
        mutating func decode(_ type: Float.Type) throws -> Float { Float(try next(Double.self, double)) }
        mutating func decode(_ type: Int.Type) throws -> Int { try next(type) { try integer($0, as: type, $1) } }
        mutating func decode(_ type: Int8.Type) throws -> Int8 { try next(type) { try integer($0, as: type, $1) } }
        mutating func decode(_ type: Int16.Type) throws -> Int16 { try next(type) { try integer($0, as: type, $1) } }
        mutating func decode(_ type: Int32.Type) throws -> Int32 { try next(type) { try integer($0, as: type, $1) } }
        mutating func decode(_ type: Int64.Type) throws -> Int64 { try next(type) { try integer($0, as: type, $1) } }
        mutating func decode(_ type: UInt.Type) throws -> UInt { try next(type) { try integer($0, as: type, $1) } }
        mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next(type) { try integer($0, as: type, $1) } }
        mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next(type) { try integer($0, as: type, $1) } }
        mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next(type) { try integer($0, as: type, $1) } }
        mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next(type) { try integer($0, as: type, $1) } }

        mutating func decode<Value: Decodable>(_ type: Value.Type) throws -> Value {
            try next(type) { try unbox($0, as: type, codingPath: $1) }
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            try next(KeyedDecodingContainer<NestedKey>.self) { try Reader(value: $0, codingPath: $1).container(keyedBy: type) }
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            try next((any UnkeyedDecodingContainer).self) { try Reader(value: $0, codingPath: $1).unkeyedContainer() }
        }

        mutating func superDecoder() throws -> any Decoder {
            try next((any Decoder).self) { Reader(value: $0, codingPath: $1) }
        }
    }

    struct SingleReader: SingleValueDecodingContainer {
        let value: JSONValue
        let codingPath: [any CodingKey]

        func decodeNil() -> Bool { value == .null }
        func decode(_ type: Bool.Type) throws -> Bool { try bool(value, codingPath) }
        func decode(_ type: String.Type) throws -> String { try string(value, codingPath) }
        func decode(_ type: Double.Type) throws -> Double { try double(value, codingPath) }
        func decode(_ type: Float.Type) throws -> Float { Float(try double(value, codingPath)) }
        func decode(_ type: Int.Type) throws -> Int { try integer(value, as: type, codingPath) }
        func decode(_ type: Int8.Type) throws -> Int8 { try integer(value, as: type, codingPath) }
        func decode(_ type: Int16.Type) throws -> Int16 { try integer(value, as: type, codingPath) }
        func decode(_ type: Int32.Type) throws -> Int32 { try integer(value, as: type, codingPath) }
        func decode(_ type: Int64.Type) throws -> Int64 { try integer(value, as: type, codingPath) }
        func decode(_ type: UInt.Type) throws -> UInt { try integer(value, as: type, codingPath) }
        func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(value, as: type, codingPath) }
        func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(value, as: type, codingPath) }
        func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(value, as: type, codingPath) }
        func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(value, as: type, codingPath) }

        func decode<Value: Decodable>(_ type: Value.Type) throws -> Value { try unbox(value, as: type, codingPath: codingPath) }
    }
}
