import Foundation

/// Encodes any `Encodable` as compact JSON the way the wire spells it (see `JSONValueEncoder`, `JSONWriter`).
public struct GantryJSONEncoder: Sendable {
    /// Indented, for people (the CLI's `--json`).
    public var prettyPrinted = false

    public init() {}

    public func encode<Value: Encodable>(_ value: Value) throws -> Data {
        if !prettyPrinted, let direct = value as? any DirectJSONWritable { return try JSONObjectWriter.data(direct) }
        return try JSONWriter.data(JSONValueEncoder.encode(value), prettyPrinted: prettyPrinted)
    }
}

/// Decodes JSON text into any `Decodable`, every `JSONValue` in it spelled as sent (see `JSONReader`).
public struct GantryJSONDecoder: Sendable {
    public init() {}

    public func decode<Value: Decodable>(_ type: Value.Type, from data: Data) throws -> Value {
        let value: JSONValue
        do {
            value = try JSONReader.read(data)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "not valid JSON: \(error)", underlyingError: error))
        }
        return try JSONValueDecoder.decode(type, from: value)
    }
}

/// The JSON conventions of the wire: RFC 3339 UTC timestamps with milliseconds, keys as each type declares them,
/// values passed through as spelled.
public enum GantryJSON {
    public static func makeEncoder() -> GantryJSONEncoder { GantryJSONEncoder() }

    public static func makeDecoder() -> GantryJSONDecoder { GantryJSONDecoder() }

    private static let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)
    private static let withoutFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: false, timeZone: .gmt)

    public static func formatTimestamp(_ date: Date) -> String {
        withFraction.format(date)
    }

    public static func parseTimestamp(_ text: String) -> Date? {
        (try? withFraction.parse(text)) ?? (try? withoutFraction.parse(text))
    }

    /// To the microsecond, as PostgreSQL keeps it (the wire's answers show milliseconds): for handing a time a
    /// client sent with microseconds (Rails' `wait_until`) to the database as text, so none is lost.
    public static func formatMicroseconds(_ date: Date) -> String {
        let microseconds = (date.timeIntervalSince1970 * 1_000_000).rounded()
        let seconds = (microseconds / 1_000_000).rounded(.down)
        let fraction = Int64(microseconds - seconds * 1_000_000)
        let whole = withoutFraction.format(Date(timeIntervalSince1970: seconds))
        let digits = String(fraction)
        return String(whole.dropLast()) + "." + String(repeating: "0", count: 6 - digits.count) + digits + "Z"
    }

    /// Decodes a request's params for its method.
    public static func decodeParams<Params: Decodable & KnownFields>(_ type: Params.Type, of request: RPCRequest) throws(RPCErrorObject) -> Params {
        try decodeParams(type, from: request.params)
    }

    /// Decodes a method's params from the request's `params` member, refusing unknown fields by name.
    public static func decodeParams<Params: Decodable & KnownFields>(_ type: Params.Type, from params: JSONValue?) throws(RPCErrorObject) -> Params {
        let value = params ?? .object([:])
        guard case .object(let fields) = value else {
            throw .invalidParams(field: "params", "must be an object with named fields, got \(value.typeName)")
        }
        try Params.checkFields(fields)
        if let (path, problem) = value.unstorable() { throw .invalidParams(field: path, problem) }
        if let params = Params.fastDecode(fields) { return params }
        do {
            return try JSONValueDecoder.decode(Params.self, from: value)
        } catch let error as DecodingError {
            throw describe(error)
        } catch {
            throw .invalidParams(field: "params", "could not be read: \(error)")
        }
    }

    /// Turns a DecodingError into a sentence that names the field, e.g. `priority must be an integer`.
    public static func describe(_ error: DecodingError) -> RPCErrorObject {
        func path(_ codingPath: [any CodingKey], appending key: (any CodingKey)? = nil) -> String {
            let keys = codingPath + (key.map { [$0] } ?? [])
            let text = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue.isEmpty ? "\"\"" : $0.stringValue)" }.joined()
            return text.hasPrefix(".") ? String(text.dropFirst()) : (text.isEmpty ? "params" : text)
        }
        switch error {
        case .keyNotFound(let key, let context):
            return .invalidParams(field: path(context.codingPath, appending: key), "is required")
        case .typeMismatch(let type, let context):
            return .invalidParams(field: path(context.codingPath), "must be \(describe(type))")
        case .valueNotFound(let type, let context):
            return .invalidParams(field: path(context.codingPath), "must be \(describe(type)), not null")
        case .dataCorrupted(let context):
            return .invalidParams(field: path(context.codingPath), context.debugDescription)
        @unknown default:
            return .invalidParams(field: "params", "could not be read: \(error)")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is any FixedWidthInteger.Type: "an integer"
        case is Double.Type: "a number"
        case is Date.Type: "an RFC 3339 timestamp string"
        default:
            String(describing: type).hasPrefix("Array") ? "an array" : (String(describing: type).hasPrefix("Dictionary") ? "an object" : "of type \(type)")
        }
    }
}

extension KeyedDecodingContainer {
    /// Reads an integer field, refusing fractions and out-of-range numbers with an error that names the field
    /// (Foundation's own error for `5.5` or `1e30` does not say which field it was).
    func decodeInteger<Integer: FixedWidthInteger>(_ type: Integer.Type, forKey key: Key) throws -> Integer? {
        guard let value = try decodeIfPresent(JSONValue.self, forKey: key), value != .null else { return nil }
        guard let whole = value.intValue, let result = Integer(exactly: whole) else {
            throw DecodingError.typeMismatch(Integer.self, .init(codingPath: codingPath + [key], debugDescription: "not an integer in range"))
        }
        return result
    }
}
