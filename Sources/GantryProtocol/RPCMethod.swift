/// Binds a method's wire name to its params and result types, so broker and clients share one definition:
/// renaming a field is a compile error on both sides at once.
public protocol RPCMethod: Sendable {
    associatedtype Params: Codable & Sendable
    associatedtype Result: Codable & Sendable
    static var name: String { get }
}

/// Params of a method that takes none.
public struct NoParams: Codable, Sendable, Hashable {
    public init() {}
}

/// Params types list the fields they accept, so a misspelt field ("delay" for "delay_ms") is refused by name
/// instead of being silently ignored.
public protocol KnownFields {
    static var fieldNames: Set<String> { get }
    /// Members holding an object, or an array of objects, whose own members are checked: member → their names.
    static var nestedFieldNames: [String: Set<String>] { get }
    /// Checks fields of nested objects (a batch's jobs); the top level is checked from `fieldNames`.
    static func checkNestedFields(_ fields: JSONObject) throws(RPCErrorObject)
    /// The params read straight from the request's fields, without Codable, or nil to let Codable decide (and
    /// word any error). Only the hot methods have one (`FastDecodedParams.swift`).
    static func fastDecode(_ fields: JSONObject) -> Self?
}

extension KnownFields {
    public static var nestedFieldNames: [String: Set<String>] { [:] }

    public static func checkNestedFields(_ fields: JSONObject) throws(RPCErrorObject) {}

    public static func fastDecode(_ fields: JSONObject) -> Self? { nil }

    static func checkFields(_ fields: JSONObject, prefix: String = "") throws(RPCErrorObject) {
        if let unknown = fields.keys.sorted().first(where: { !fieldNames.contains($0) }) {
            let known = fieldNames.sorted().joined(separator: ", ")
            throw .invalidParams(field: prefix + (unknown.isEmpty ? "\"\"" : unknown), "is not a field of this method (fields: \(known.isEmpty ? "none" : known))")
        }
        try checkNestedFields(fields)
    }
}

extension NoParams: KnownFields {
    public static let fieldNames: Set<String> = []
}

/// Params that check their own values beyond their types (ranges, name syntax) and name the offending field.
public protocol ValidatedParams {
    func validate() throws(RPCErrorObject)
}
