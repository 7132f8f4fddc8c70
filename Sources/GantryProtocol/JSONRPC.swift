import Foundation

/// A JSON-RPC 2.0 request id: a string or a number. A request without one is a notification.
public enum RPCID: Sendable, Hashable, Codable, CustomStringConvertible {
    case string(String)
    case number(Int64)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            self = .number(number)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        }
    }

    public var description: String {
        switch self {
        case .string(let value): "\"\(value)\""
        case .number(let value): String(value)
        }
    }
}

/// One JSON-RPC request as it arrives, before its params are decoded for a particular method.
public struct RPCRequest: Sendable, Hashable {
    public var id: RPCID?
    public var method: String
    /// An object or an array (by position), or nil when the request has none.
    public var params: JSONValue?

    public init(id: RPCID?, method: String, params: JSONValue? = nil) {
        self.id = id
        self.method = method
        self.params = params
    }

    public var isNotification: Bool { id == nil }

    /// Checks a parsed JSON value against the JSON-RPC 2.0 request shape.
    /// On failure the error is -32600 and carries the id when one could be read, so the client can match it.
    public static func validate(_ value: JSONValue) -> Result<RPCRequest, RPCErrorResponse> {
        guard case .object(let fields) = value else {
            return .failure(RPCErrorResponse(id: nil, error: .invalidRequest("a request must be a JSON object, got \(value.typeName)")))
        }
        var id: RPCID?
        switch fields["id"] {
        case nil, .null?: id = nil
        case .string(let text)?: id = .string(text)
        case .int(let number)?: id = .number(number)
        case let other?:
            return .failure(RPCErrorResponse(id: nil, error: .invalidRequest("\"id\" must be a string or an integer, got \(other.typeName)")))
        }
        if fields["id"] == .null {
            // JSON-RPC discourages null ids; we answer them (id null) rather than silently treating them as notifications.
            return .failure(RPCErrorResponse(id: nil, error: .invalidRequest("\"id\" must be a string or an integer, not null; leave it out for a notification")))
        }
        guard fields["jsonrpc"] == .string("2.0") else {
            return .failure(RPCErrorResponse(id: id, error: .invalidRequest("\"jsonrpc\" must be exactly \"2.0\"")))
        }
        guard case .string(let method)? = fields["method"], !method.isEmpty else {
            return .failure(RPCErrorResponse(id: id, error: .invalidRequest("\"method\" must be a non-empty string")))
        }
        switch fields["params"] {
        case nil, .null?:
            return .success(RPCRequest(id: id, method: method))
        case let params? where params.objectValue != nil || params.arrayValue != nil:
            return .success(RPCRequest(id: id, method: method, params: params))
        case let other?:
            return .failure(RPCErrorResponse(id: id, error: .invalidRequest("\"params\" must be an object, got \(other.typeName)")))
        }
    }
}

/// The error member of a JSON-RPC response.
public struct RPCErrorObject: Sendable, Hashable, Codable, Error {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var name: String? { GantryErrorCode(rawValue: code)?.name }
}

/// A JSON-RPC response: exactly one of `result` and `error`.
public struct RPCResponse: Sendable, Hashable, Codable {
    public var jsonrpc: String = "2.0"
    public var id: RPCID?
    public var result: JSONValue?
    public var error: RPCErrorObject?

    public init(id: RPCID?, result: JSONValue) {
        self.id = id
        self.result = result
    }

    public init(id: RPCID?, error: RPCErrorObject) {
        self.id = id
        self.error = error
    }

    enum CodingKeys: String, CodingKey { case jsonrpc, id, result, error }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(jsonrpc, forKey: .jsonrpc)
        // The spec requires "id" in every response, null when the request's id could not be read.
        if let id { try container.encode(id, forKey: .id) } else { try container.encodeNil(forKey: .id) }
        if let error { try container.encode(error, forKey: .error) } else { try container.encode(result ?? .null, forKey: .result) }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        jsonrpc = try container.decode(String.self, forKey: .jsonrpc)
        id = try container.decodeIfPresent(RPCID.self, forKey: .id)
        result = try container.decodeIfPresent(JSONValue.self, forKey: .result)
        error = try container.decodeIfPresent(RPCErrorObject.self, forKey: .error)
    }
}

/// An error answer for a request, before it is wrapped into a response.
public struct RPCErrorResponse: Error, Sendable {
    public var id: RPCID?
    public var error: RPCErrorObject

    public init(id: RPCID?, error: RPCErrorObject) {
        self.id = id
        self.error = error
    }

    public var response: RPCResponse { RPCResponse(id: id, error: error) }
}
