import Foundation
import Synchronization

// Reading a request straight from its line. Building a JSONValue of the whole line, encoding the params back to
// JSON and decoding them again into the method's type cost most of the broker's CPU; a lone request (nearly
// every line) is instead read in two passes over the same bytes: `RequestHead` for the envelope, `LineParams`
// for the params, straight into their type. Whatever this fast path does not take (unknown fields, numbers
// beyond a Double, wrong types) goes the general way, which words the error; so both ways answer alike.

/// A key of any name, for reading an object's member names without decoding its values.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A request's members as JSON values, except its params, of which only the shape is noted.
struct RequestHead: Decodable {
    enum Params {
        case absent
        case value(JSONValue)
        /// An object, left in the line.
        case object
    }

    var members: [String: JSONValue] = [:]
    var params = Params.absent

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        for key in container.allKeys {
            if key.stringValue == "params" {
                // Only checks that it is an object: its members stay unread.
                if (try? container.nestedContainer(keyedBy: AnyCodingKey.self, forKey: key)) != nil {
                    params = .object
                } else {
                    params = .value(try container.decode(JSONValue.self, forKey: key))
                }
            } else {
                members[key.stringValue] = try container.decode(JSONValue.self, forKey: key)
            }
        }
    }
}

/// Set by `JSONValue` when it reads a number beyond a Double as infinity: the fast path then gives way, so the
/// general one can name the field.
final class NonFiniteNumbers: Sendable {
    static let key = CodingUserInfoKey(rawValue: "gantry.NonFiniteNumbers")!
    private let seen = Atomic(false)

    var wereSeen: Bool { seen.load(ordering: .relaxed) }
    func note() { seen.store(true, ordering: .relaxed) }
}

/// The fast path gave way (an unknown field): not an error of the request's, the general path decides.
struct NotOnFastPath: Error {}

/// A lone request's params, read from its line straight into the method's type after checking that every
/// member (and every member of the nested objects `nestedFieldNames` lists) is known.
struct LineParams<Params: Decodable & KnownFields>: Decodable {
    var params: Params

    private enum Key: String, CodingKey { case params }

    init(from decoder: any Decoder) throws {
        let top = try decoder.container(keyedBy: Key.self)
        let fields = try top.nestedContainer(keyedBy: AnyCodingKey.self, forKey: .params)
        guard fields.allKeys.allSatisfy({ Params.fieldNames.contains($0.stringValue) }) else { throw NotOnFastPath() }
        for (member, known) in Params.nestedFieldNames where fields.contains(AnyCodingKey(member)) {
            try Self.checkNested(fields, member: AnyCodingKey(member), known: known)
        }
        params = try top.decode(Params.self, forKey: .params)
    }

    /// Every member of the object, or of each object in the array, at `member` is known.
    private static func checkNested(_ fields: KeyedDecodingContainer<AnyCodingKey>, member: AnyCodingKey, known: Set<String>) throws {
        func check(_ object: KeyedDecodingContainer<AnyCodingKey>) throws {
            guard object.allKeys.allSatisfy({ known.contains($0.stringValue) }) else { throw NotOnFastPath() }
        }
        if let object = try? fields.nestedContainer(keyedBy: AnyCodingKey.self, forKey: member) {
            try check(object)
        } else if var elements = try? fields.nestedUnkeyedContainer(forKey: member) {
            while !elements.isAtEnd { try check(try elements.nestedContainer(keyedBy: AnyCodingKey.self)) }
        }
    }
}
