import Foundation

/// A job type as operators see it: what it is for, the queue it goes to by default, the JSON Schema its args
/// must match (enforced at every enqueue), and whether the dashboard may run it by hand. Announced by workers in
/// `hello` (`handlers: [{type, args_schema}]`) or registered by an operator; kept in PostgreSQL, so a type
/// outlives its workers.
public struct JobType: Codable, Sendable, Hashable {
    public var type: String
    public var queue: String?
    public var description: String?
    public var argsSchema: JSONValue?
    public var runnable: Bool
    /// `rpc` (registered by an operator; a worker's announcement then never replaces its schema), `worker` or
    /// `config`.
    public var source: String
    /// When a worker last announced it in `hello`.
    public var announcedAt: Date?
    public var createdAt: Date
    public var updatedAt: Date

    public init(type: String, queue: String?, description: String?, argsSchema: JSONValue?, runnable: Bool, source: String,
                announcedAt: Date?, createdAt: Date, updatedAt: Date) {
        self.type = type
        self.queue = queue
        self.description = description
        self.argsSchema = argsSchema
        self.runnable = runnable
        self.source = source
        self.announcedAt = announcedAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case type, queue, description, runnable, source
        case argsSchema = "args_schema"
        case announcedAt = "announced_at"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

/// `types.register`: creates or replaces a job type. A schema given here is checked at once (a keyword of the
/// wrong kind, a bad `pattern`, `$ref`) and from then on enforced on every enqueue of the type.
/// `{"jsonrpc":"2.0","id":1,"method":"types.register","params":{"type":"invoice.pay","args_schema":{"type":"object"}}}`
public enum TypesRegister: RPCMethod {
    public static let name = "types.register"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var type: String
        public var queue: String?
        public var description: String?
        public var argsSchema: JSONValue?
        public var runnable: Bool

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

        public init(type: String, queue: String? = nil, description: String? = nil, argsSchema: JSONValue? = nil, runnable: Bool = true) {
            self.type = type
            self.queue = queue
            self.description = description
            self.argsSchema = argsSchema
            self.runnable = runnable
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case type, queue, description, runnable
            case argsSchema = "args_schema"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            queue = try c.decodeIfPresent(String.self, forKey: .queue)
            description = try c.decodeIfPresent(String.self, forKey: .description)
            argsSchema = try c.decodeIfPresent(JSONValue.self, forKey: .argsSchema)
            if argsSchema == .null { argsSchema = nil }
            runnable = try c.decodeIfPresent(Bool.self, forKey: .runnable) ?? true
        }

        public func validate() throws(RPCErrorObject) {
            try Names.checkType(type, field: "type")
            if let queue { try Names.checkQueue(queue, field: "queue") }
            if let description, description.unicodeScalars.count > 2000 { throw .invalidParams(field: "description", "must be at most 2000 characters") }
            // The schema itself is checked where it is compiled, once (`JSONSchema.checked`, by the broker).
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var type: JobType
        /// False when the type existed and was replaced.
        public var created: Bool

        public init(type: JobType, created: Bool) {
            self.type = type
            self.created = created
        }
    }
}

/// `types.list`: every known type, by name.
public enum TypesList: RPCMethod {
    public static let name = "types.list"
    public typealias Params = NoParams

    public struct Result: Codable, Sendable, Hashable {
        public var types: [JobType]
        public init(types: [JobType]) { self.types = types }
    }
}

/// Params naming one type (`types.get`, `types.delete`).
public struct TypeNameParams: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
    public var type: String
    public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
    enum CodingKeys: String, CodingKey, CaseIterable { case type }
    public init(type: String) { self.type = type }
    public func validate() throws(RPCErrorObject) { try Names.checkType(type, field: "type") }
}

/// `types.get`: one type, with its schema.
public enum TypesGet: RPCMethod {
    public static let name = "types.get"
    public typealias Params = TypeNameParams
    public typealias Result = JobType
}

/// `types.delete`: forgets a type and its presets; its args are no longer checked. A worker announcing it again
/// brings it back.
public enum TypesDelete: RPCMethod {
    public static let name = "types.delete"
    public typealias Params = TypeNameParams

    public struct Result: Codable, Sendable, Hashable {
        public var deleted: Bool
        public init(deleted: Bool) { self.deleted = deleted }
    }
}

extension JSONSchema {
    /// A schema as params carry it, or an invalid-params error naming where inside it the problem is.
    public static func checked(_ schema: JSONValue, field: String) throws(RPCErrorObject) -> JSONSchema {
        do { return try JSONSchema(schema, path: field) } catch { throw .invalidParams(field: error.path, "is not a schema Gantry can check: \(error.message)") }
    }
}

extension RPCErrorObject {
    public static func noSuchType(_ type: String) -> RPCErrorObject {
        RPCErrorObject(.notFound, "No job type is named \(type). types.list shows the types there are.", data: ["type": .string(type)])
    }

    /// Args that do not match their type's schema: the message names the first failing path and rule, `data`
    /// lists up to ten.
    public static func argsDoNotMatch(type: String, _ violations: [SchemaViolation], prefix: String = "") -> RPCErrorObject {
        let first = violations[0]
        let listed: [JSONValue] = violations.map {
            .object(["path": .string(prefix + $0.path), "rule": .string($0.rule), "message": .string($0.message)])
        }
        return RPCErrorObject(
            .invalidParams,
            "Invalid params: \(prefix)\(first.path): \(first.message) (the args_schema of job type \(type); types.get shows it).",
            data: ["field": .string(prefix + first.path), "rule": .string(first.rule), "type": .string(type), "violations": .array(listed)])
    }
}
