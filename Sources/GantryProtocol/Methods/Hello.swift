/// `hello`: introduces the client; a worker also says what it works on, for operators to see.
/// `{"jsonrpc":"2.0","id":1,"method":"hello","params":{"client":"billing-app","protocol":1}}`
public enum Hello: RPCMethod {
    public static let name = "hello"

    public struct Handler: Codable, Sendable, Hashable {
        public var type: String
        public var argsSchema: JSONValue?

        public init(type: String, argsSchema: JSONValue? = nil) {
            self.type = type
            self.argsSchema = argsSchema
        }

        enum CodingKeys: String, CodingKey {
            case type
            case argsSchema = "args_schema"
        }
    }

    public struct Worker: Codable, Sendable, Hashable {
        public var id: String
        public var queues: [String]
        public var concurrency: Int
        public var handlers: [Handler]

        public init(id: String, queues: [String], concurrency: Int, handlers: [Handler] = []) {
            self.id = id
            self.queues = queues
            self.concurrency = concurrency
            self.handlers = handlers
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try container.decode(String.self, forKey: .id)
            queues = try container.decodeIfPresent([String].self, forKey: .queues) ?? []
            concurrency = try container.decodeInteger(Int.self, forKey: .concurrency) ?? 1
            handlers = try container.decodeIfPresent([Handler].self, forKey: .handlers) ?? []
        }
    }

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var client: String?
        public var `protocol`: Int
        public var token: String?
        public var worker: Worker?

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        enum CodingKeys: String, CodingKey, CaseIterable {
            case client, `protocol`, token, worker
        }

        public init(client: String? = nil, protocol: Int = ProtocolDefaults.protocolVersion, token: String? = nil, worker: Worker? = nil) {
            self.client = client
            self.protocol = `protocol`
            self.token = token
            self.worker = worker
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            client = try container.decodeIfPresent(String.self, forKey: .client)
            `protocol` = try container.decodeInteger(Int.self, forKey: .protocol) ?? ProtocolDefaults.protocolVersion
            token = try container.decodeIfPresent(String.self, forKey: .token)
            worker = try container.decodeIfPresent(Worker.self, forKey: .worker)
        }

        public func validate() throws(RPCErrorObject) {
            guard `protocol` == ProtocolDefaults.protocolVersion else {
                throw .invalidParams(field: "protocol", "is \(`protocol`), but this broker speaks protocol \(ProtocolDefaults.protocolVersion)")
            }
            if let worker {
                for (index, queue) in worker.queues.enumerated() { try Names.checkQueue(queue, field: "worker.queues[\(index)]") }
                guard worker.concurrency >= 1 else { throw .invalidParams(field: "worker.concurrency", "must be at least 1") }
                for (index, handler) in worker.handlers.enumerated() { try Names.checkType(handler.type, field: "worker.handlers[\(index)].type") }
            }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var broker: String
        public var `protocol`: Int
        public var sessionID: String

        public init(broker: String, protocol: Int, sessionID: String) {
            self.broker = broker
            self.protocol = `protocol`
            self.sessionID = sessionID
        }

        enum CodingKeys: String, CodingKey {
            case broker, `protocol`
            case sessionID = "session_id"
        }
    }
}
