import Foundation
import OrderedCollections

/// Turns any `Encodable` into a `JSONValue` (Foundation's encoder could not carry a number's spelling through),
/// with the wire's conventions: RFC 3339 timestamps, members in the order the type encodes them (a dictionary's
/// sorted by key), nil optionals left out.
public enum JSONValueEncoder {
    public static func encode<Value: Encodable>(_ value: Value) throws -> JSONValue {
        try Node.boxing(value, codingPath: []).resolved
    }

    /// What one value became while its type encodes itself: a value, or members or elements still being added.
    final class Node {
        var value: JSONValue?
        var members: OrderedDictionary<String, Node>?
        var elements: [Node]?

        init(_ value: JSONValue? = nil) { self.value = value }

        var resolved: JSONValue {
            if let members { return .object(JSONObject(uniqueKeysWithValues: members.lazy.map { ($0.key, $0.value.resolved) })) }
            if let elements { return .array(elements.map(\.resolved)) }
            // A type that encoded nothing at all is an empty object, as with Foundation's encoder.
            return value ?? .object([:])
        }

        static func boxing<Value: Encodable>(_ value: Value, codingPath: [any CodingKey]) throws -> Node {
            // Two conformance checks (cached by the runtime), not a cast per candidate type: this runs for every
            // member of every answer.
            if let scalar = value as? any WireScalar { return Node(try scalar.wireValue(at: codingPath)) }
            if let dictionary = value as? any StringKeyedDictionary {
                // Sorted, so that a dictionary (stats by queue, say) is written the same way every time.
                let node = Node()
                node.members = [:]
                for (key, member) in dictionary.sortedMembers() {
                    node.members![key] = try boxing(member, codingPath: codingPath + [IndexKey(name: key)])
                }
                return node
            }
            let node = Node()
            try value.encode(to: Writer(node: node, codingPath: codingPath))
            return node
        }

        static func double(_ number: Double, _ codingPath: [any CodingKey]) throws -> JSONValue {
            guard number.isFinite else {
                throw EncodingError.invalidValue(number, .init(codingPath: codingPath, debugDescription: "JSON has no spelling for \(number)"))
            }
            return .double(number)
        }

        static func integer<Integer: BinaryInteger>(_ number: Integer) -> JSONValue {
            Int64(exactly: number).map(JSONValue.int) ?? .number(String(number))
        }
    }

    final class Writer: Encoder {
        let node: Node
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        init(node: Node, codingPath: [any CodingKey]) {
            self.node = node
            self.codingPath = codingPath
        }

        func store(_ value: JSONValue) { node.value = value }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            if node.members == nil { node.members = [:] }
            return KeyedEncodingContainer(KeyedWriter<Key>(node: node, codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            if node.elements == nil { node.elements = [] }
            return UnkeyedWriter(node: node, codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer {
            SingleWriter(node: node, codingPath: codingPath)
        }
    }

    struct KeyedWriter<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let node: Node
        let codingPath: [any CodingKey]

        private func put(_ value: JSONValue, _ key: Key) { node.members![key.stringValue] = Node(value) }

        mutating func encodeNil(forKey key: Key) throws { put(.null, key) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { put(.bool(value), key) }
        mutating func encode(_ value: String, forKey key: Key) throws { put(.string(value), key) }
        mutating func encode(_ value: Double, forKey key: Key) throws { put(try Node.double(value, codingPath + [key]), key) }
        mutating func encode(_ value: Float, forKey key: Key) throws { put(try Node.double(Double(value), codingPath + [key]), key) }
        mutating func encode(_ value: Int, forKey key: Key) throws { put(.int(Int64(value)), key) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { put(Node.integer(value), key) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { put(Node.integer(value), key) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { put(Node.integer(value), key) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { put(.int(value), key) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { put(Node.integer(value), key) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { put(Node.integer(value), key) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { put(Node.integer(value), key) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { put(Node.integer(value), key) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { put(Node.integer(value), key) }

        mutating func encode<Value: Encodable>(_ value: Value, forKey key: Key) throws {
            node.members![key.stringValue] = try Node.boxing(value, codingPath: codingPath + [key])
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            let child = Node()
            child.members = [:]
            node.members![key.stringValue] = child
            return KeyedEncodingContainer(KeyedWriter<NestedKey>(node: child, codingPath: codingPath + [key]))
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let child = Node()
            child.elements = []
            node.members![key.stringValue] = child
            return UnkeyedWriter(node: child, codingPath: codingPath + [key])
        }

        mutating func superEncoder() -> any Encoder { superEncoder(named: "super") }
        mutating func superEncoder(forKey key: Key) -> any Encoder { superEncoder(named: key.stringValue) }

        private func superEncoder(named name: String) -> any Encoder {
            let child = Node()
            node.members![name] = child
            return Writer(node: child, codingPath: codingPath + [IndexKey(name: name)])
        }
    }

    struct UnkeyedWriter: UnkeyedEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]
        var count: Int { node.elements!.count }

        private func append(_ value: JSONValue) { node.elements!.append(Node(value)) }
        private var nextPath: [any CodingKey] { codingPath + [IndexKey(count)] }

        mutating func encodeNil() throws { append(.null) }
        mutating func encode(_ value: Bool) throws { append(.bool(value)) }
        mutating func encode(_ value: String) throws { append(.string(value)) }
        mutating func encode(_ value: Double) throws { append(try Node.double(value, nextPath)) }
        mutating func encode(_ value: Float) throws { append(try Node.double(Double(value), nextPath)) }
        mutating func encode(_ value: Int) throws { append(.int(Int64(value))) }
        mutating func encode(_ value: Int8) throws { append(Node.integer(value)) }
        mutating func encode(_ value: Int16) throws { append(Node.integer(value)) }
        mutating func encode(_ value: Int32) throws { append(Node.integer(value)) }
        mutating func encode(_ value: Int64) throws { append(.int(value)) }
        mutating func encode(_ value: UInt) throws { append(Node.integer(value)) }
        mutating func encode(_ value: UInt8) throws { append(Node.integer(value)) }
        mutating func encode(_ value: UInt16) throws { append(Node.integer(value)) }
        mutating func encode(_ value: UInt32) throws { append(Node.integer(value)) }
        mutating func encode(_ value: UInt64) throws { append(Node.integer(value)) }

        mutating func encode<Value: Encodable>(_ value: Value) throws {
            node.elements!.append(try Node.boxing(value, codingPath: nextPath))
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            let child = Node()
            child.members = [:]
            let path = nextPath
            node.elements!.append(child)
            return KeyedEncodingContainer(KeyedWriter<NestedKey>(node: child, codingPath: path))
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let child = Node()
            child.elements = []
            let path = nextPath
            node.elements!.append(child)
            return UnkeyedWriter(node: child, codingPath: path)
        }

        mutating func superEncoder() -> any Encoder {
            let child = Node()
            let path = nextPath
            node.elements!.append(child)
            return Writer(node: child, codingPath: path)
        }
    }

    struct SingleWriter: SingleValueEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]

        mutating func encodeNil() throws { node.value = .null }
        mutating func encode(_ value: Bool) throws { node.value = .bool(value) }
        mutating func encode(_ value: String) throws { node.value = .string(value) }
        mutating func encode(_ value: Double) throws { node.value = try Node.double(value, codingPath) }
        mutating func encode(_ value: Float) throws { node.value = try Node.double(Double(value), codingPath) }
        mutating func encode(_ value: Int) throws { node.value = .int(Int64(value)) }
        mutating func encode(_ value: Int8) throws { node.value = Node.integer(value) }
        mutating func encode(_ value: Int16) throws { node.value = Node.integer(value) }
        mutating func encode(_ value: Int32) throws { node.value = Node.integer(value) }
        mutating func encode(_ value: Int64) throws { node.value = .int(value) }
        mutating func encode(_ value: UInt) throws { node.value = Node.integer(value) }
        mutating func encode(_ value: UInt8) throws { node.value = Node.integer(value) }
        mutating func encode(_ value: UInt16) throws { node.value = Node.integer(value) }
        mutating func encode(_ value: UInt32) throws { node.value = Node.integer(value) }
        mutating func encode(_ value: UInt64) throws { node.value = Node.integer(value) }

        mutating func encode<Value: Encodable>(_ value: Value) throws {
            let boxed = try Node.boxing(value, codingPath: codingPath)
            node.value = boxed.value
            node.members = boxed.members
            node.elements = boxed.elements
        }
    }
}

/// An array position (or a `super` member) in a coding path.
struct IndexKey: CodingKey {
    var stringValue: String
    var intValue: Int?

    init(_ index: Int) {
        stringValue = "Index \(index)"
        intValue = index
    }

    init(name: String) {
        stringValue = name
        intValue = nil
    }

    init?(stringValue: String) { self.init(name: stringValue) }
    init?(intValue: Int) { self.init(intValue) }
}

/// Values the encoder writes itself, as one JSON value, with the wire's conventions (dates as RFC 3339 text).
protocol WireScalar {
    func wireValue(at codingPath: [any CodingKey]) throws -> JSONValue
}

extension JSONValue: WireScalar {
    func wireValue(at codingPath: [any CodingKey]) -> JSONValue { self }
}

extension Date: WireScalar {
    func wireValue(at codingPath: [any CodingKey]) -> JSONValue { .string(GantryJSON.formatTimestamp(self)) }
}

extension String: WireScalar {
    func wireValue(at codingPath: [any CodingKey]) -> JSONValue { .string(self) }
}

extension Bool: WireScalar {
    func wireValue(at codingPath: [any CodingKey]) -> JSONValue { .bool(self) }
}

extension Int: WireScalar {
    func wireValue(at codingPath: [any CodingKey]) -> JSONValue { .int(Int64(self)) }
}

extension Int64: WireScalar {
    func wireValue(at codingPath: [any CodingKey]) -> JSONValue { .int(self) }
}

extension Double: WireScalar {
    func wireValue(at codingPath: [any CodingKey]) throws -> JSONValue { try JSONValueEncoder.Node.double(self, codingPath) }
}

/// A dictionary with string keys, whose members the encoder writes sorted by key.
protocol StringKeyedDictionary {
    func sortedMembers() -> [(String, any Encodable)]
}

extension Dictionary: StringKeyedDictionary where Key == String, Value: Encodable {
    func sortedMembers() -> [(String, any Encodable)] {
        keys.sorted().map { ($0, self[$0]! as any Encodable) }
    }
}
