/// Every error code Gantry answers with: JSON-RPC's standard ones and Gantry's own (-32000…-32099).
/// The names and meanings are the contract; `proto-json/errors.json` lists the same table.
public enum GantryErrorCode: Int, Sendable, CaseIterable, Codable {
    case parseError = -32700
    case invalidRequest = -32600
    case methodNotFound = -32601
    case invalidParams = -32602
    case internalError = -32603

    case unauthorized = -32001
    case notFound = -32002
    case leaseLost = -32003
    case storageUnavailable = -32004
    case overloaded = -32005
    case payloadTooLarge = -32006
    case shuttingDown = -32007
    case wrongState = -32008
    case forbidden = -32009

    public var name: String {
        switch self {
        case .parseError: "parse_error"
        case .invalidRequest: "invalid_request"
        case .methodNotFound: "method_not_found"
        case .invalidParams: "invalid_params"
        case .internalError: "internal_error"
        case .unauthorized: "unauthorized"
        case .notFound: "not_found"
        case .leaseLost: "lease_lost"
        case .storageUnavailable: "storage_unavailable"
        case .overloaded: "overloaded"
        case .payloadTooLarge: "payload_too_large"
        case .shuttingDown: "shutting_down"
        case .wrongState: "wrong_state"
        case .forbidden: "forbidden"
        }
    }

    /// Whether the same request may succeed if sent again later, unchanged.
    public var isRetryable: Bool {
        switch self {
        case .storageUnavailable, .overloaded, .shuttingDown: true
        default: false
        }
    }
}

extension RPCErrorObject {
    public init(_ code: GantryErrorCode, _ message: String, data: JSONValue? = nil) {
        self.init(code: code.rawValue, message: message, data: data)
    }

    public static func parseError(_ detail: String) -> RPCErrorObject {
        RPCErrorObject(.parseError, "The line is not valid JSON (\(detail)). Send one JSON-RPC request per line, UTF-8, ending in \\n.")
    }

    public static func invalidRequest(_ detail: String) -> RPCErrorObject {
        RPCErrorObject(.invalidRequest, "Not a JSON-RPC 2.0 request: \(detail). Send {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"…\",\"params\":{…}}.")
    }

    public static func methodNotFound(_ method: String, known: [String]) -> RPCErrorObject {
        RPCErrorObject(
            .methodNotFound, "There is no method \"\(method)\". Methods: \(known.joined(separator: ", ")).",
            data: ["method": .string(method)])
    }

    /// Invalid params always name the field, so a client can point at its own mistake.
    public static func invalidParams(field: String, _ problem: String) -> RPCErrorObject {
        RPCErrorObject(.invalidParams, "Invalid params: \(field) \(problem).", data: ["field": .string(field)])
    }

    public static func internalError(_ detail: String) -> RPCErrorObject {
        RPCErrorObject(.internalError, "The broker failed to handle this request (\(detail)). This is a bug in Gantry; please report it with the broker's log.")
    }

    public static func notFound(jobID: String) -> RPCErrorObject {
        RPCErrorObject(.notFound, "No job has id \(jobID). Check the id you got from enqueue or reserve.", data: ["id": .string(jobID)])
    }

    public static func leaseLost(jobID: String, state: String) -> RPCErrorObject {
        let why = switch state {
        case "reserved", "available", "scheduled":
            "its lease ran out or the connection that reserved it closed, so it was put back and may already run elsewhere. Extend long jobs' leases before they run out"
        default:
            "it is already \(state)"
        }
        return RPCErrorObject(
            .leaseLost, "This connection does not hold the lease on job \(jobID): \(why). Do not ack or nack it again.",
            data: ["id": .string(jobID), "state": .string(state)])
    }

    /// - Parameter certain: whether the broker knows nothing was applied (no query was sent). When a connection
    ///   dropped mid-request it cannot know, and says so.
    public static func storageUnavailable(_ detail: String, certain: Bool = true) -> RPCErrorObject {
        let outcome = certain
            ? "Nothing was changed; retry the request shortly."
            : "The connection dropped mid-request, so it may or may not have been applied; retry shortly (an ack or nack retried after it took effect answers lease_lost)."
        // `applied: false` lets a client retry on its own: the request did nothing. Without it, it may have.
        var data: JSONObject = ["retryable": true]
        if certain { data["applied"] = false }
        return RPCErrorObject(.storageUnavailable, "The broker cannot reach PostgreSQL right now (\(detail)). \(outcome)", data: .object(data))
    }

    public static func payloadTooLarge(limit: Int) -> RPCErrorObject {
        RPCErrorObject(
            .payloadTooLarge,
            "The line is longer than the broker's limit of \(limit) bytes, so the connection will be closed. Keep each request under the limit: store large payloads elsewhere and enqueue a reference to them.",
            data: ["limit_bytes": .int(Int64(limit))])
    }

    public static func wrongState(jobID: String, state: String, action: String, allowed: String) -> RPCErrorObject {
        let hint = state == "reserved" ? " A worker holds it now; wait for it to finish." : ""
        return RPCErrorObject(
            .wrongState, "Job \(jobID) is \(state); only \(allowed) jobs can be \(action).\(hint)",
            data: ["id": .string(jobID), "state": .string(state)])
    }

    /// `jobs.retry` of a job whose `unique_key` another job holds while it waits or runs.
    public static func uniqueKeyTaken(jobID: String, holderID: String) -> RPCErrorObject {
        RPCErrorObject(
            .wrongState, "Job \(jobID) cannot be retried now: job \(holderID) has the same unique_key and is waiting, running, or completed within its unique_for_ms. Retry it once that one has let the key go.",
            data: ["id": .string(jobID), "holder_id": .string(holderID)])
    }

    /// No valid token: before `hello`, or `hello` with a token the broker does not know.
    public static func unauthorized(_ detail: String) -> RPCErrorObject {
        RPCErrorObject(.unauthorized, "\(detail) This broker requires a token: send hello first with {\"token\": \"…\"} (an operator creates tokens with `gantry token new`).")
    }

    /// The token is valid but its role, or its queues, do not cover the request.
    public static func forbidden(token: String, role: String, method: String, queue: String? = nil, allowedQueues: [String] = []) -> RPCErrorObject {
        var data: JSONObject = ["token": .string(token), "role": .string(role), "method": .string(method)]
        let message: String
        if let queue {
            data["queue"] = .string(queue)
            message = "The token \"\(token)\" may use only the queues \(allowedQueues.joined(separator: ", ")), not \"\(queue)\". Use a token for that queue."
        } else {
            message = "The token \"\(token)\" has the role \(role), which may not call \(method). Use a token whose role may (producer: enqueue; worker: reserve, ack, nack, extend; admin: everything)."
        }
        return RPCErrorObject(.forbidden, message, data: .object(data))
    }

    /// The broker refuses a connection beyond its limits; sent once, then the connection is closed.
    public static func tooManyConnections(_ detail: String) -> RPCErrorObject {
        RPCErrorObject(.overloaded, "The broker has too many connections (\(detail)), so this one is closed. Reuse connections (one per process is enough: requests pipeline), or retry later.", data: ["retryable": true])
    }

    public static let shuttingDown = RPCErrorObject(
        .shuttingDown, "The broker is shutting down and takes no new work on this connection. Reconnect, to this broker once it is back or to another one.",
        data: ["retryable": true])
}
