import Foundation

/// A webhook: every event it names (in `queues`, when given) is POSTed to `url` as JSON, signed with its secret.
/// The secret is never answered.
public struct Webhook: Codable, Sendable, Hashable {
    public var name: String
    public var url: String
    public var events: [String]
    public var queues: [String]?
    /// `rpc` or `config` (the config file's `webhooks:`).
    public var source: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(name: String, url: String, events: [String], queues: [String]?, source: String, createdAt: Date, updatedAt: Date) {
        self.name = name
        self.url = url
        self.events = events
        self.queues = queues
        self.source = source
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case name, url, events, queues, source
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

/// `webhooks.upsert`: creates or replaces a webhook by name.
/// `{"jsonrpc":"2.0","id":1,"method":"webhooks.upsert","params":{"name":"pager","url":"https://hooks.example.com/gantry","events":["job.dead"],"secret":"s3cret-shared-with-the-receiver"}}`
public enum WebhooksUpsert: RPCMethod {
    public static let name = "webhooks.upsert"
    public static let minSecretLength = 16

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var name: String
        public var url: String
        public var events: [String]
        public var queues: [String]?
        public var secret: String

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
        enum CodingKeys: String, CodingKey, CaseIterable { case name, url, events, queues, secret }

        public init(name: String, url: String, events: [String], queues: [String]? = nil, secret: String) {
            self.name = name
            self.url = url
            self.events = events
            self.queues = queues
            self.secret = secret
        }

        public func validate() throws(RPCErrorObject) {
            try SubscriptionName.check(name, field: "name")
            guard url.utf8.count <= 2048, let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""),
                  let host = parsed.host, !host.isEmpty
            else {
                throw .invalidParams(field: "url", "must be an http:// or https:// URL with a host, like https://hooks.example.com/gantry")
            }
            _ = try LifecycleEvent.parse(events, field: "events")
            if let queues {
                guard !queues.isEmpty else { throw .invalidParams(field: "queues", "is empty; leave it out for every queue") }
                for (index, queue) in queues.enumerated() { try Names.checkQueue(queue, field: "queues[\(index)]") }
            }
            guard secret.utf8.count >= WebhooksUpsert.minSecretLength, secret.utf8.count <= 512 else {
                throw .invalidParams(field: "secret", "must be \(WebhooksUpsert.minSecretLength) to 512 bytes: the receiver checks X-Gantry-Signature with it (`gantry token new` makes a strong one)")
            }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var webhook: Webhook
        public var created: Bool
        public init(webhook: Webhook, created: Bool) {
            self.webhook = webhook
            self.created = created
        }
    }
}

public struct WebhookNameParams: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
    public var name: String
    public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
    enum CodingKeys: String, CodingKey, CaseIterable { case name }
    public init(name: String) { self.name = name }
    public func validate() throws(RPCErrorObject) { try SubscriptionName.check(name, field: "name") }
}

public enum WebhooksList: RPCMethod {
    public static let name = "webhooks.list"
    public typealias Params = NoParams
    public struct Result: Codable, Sendable, Hashable {
        public var webhooks: [Webhook]
        public init(webhooks: [Webhook]) { self.webhooks = webhooks }
    }
}

/// `webhooks.delete`: the webhook and its deliveries, sent or not.
public enum WebhooksDelete: RPCMethod {
    public static let name = "webhooks.delete"
    public typealias Params = WebhookNameParams
    public typealias Result = TypesDelete.Result
}

/// One event for one webhook: delivered, waiting for its next attempt, or given up on.
public struct WebhookDelivery: Codable, Sendable, Hashable {
    /// Sent as `X-Gantry-Delivery` with every attempt, so a receiver can drop repeats.
    public var id: String
    public var event: String
    public var body: JSONValue
    public var attempts: Int
    /// The receiver's last HTTP status, and the start of its answer.
    public var lastStatus: Int?
    public var lastResponse: String?
    /// Why the last attempt got no answer (refused, timed out, …).
    public var lastError: String?
    public var nextAttemptAt: Date?
    public var deliveredAt: Date?
    public var gaveUpAt: Date?
    public var createdAt: Date

    public init(id: String, event: String, body: JSONValue, attempts: Int, lastStatus: Int?, lastResponse: String?, lastError: String?,
                nextAttemptAt: Date?, deliveredAt: Date?, gaveUpAt: Date?, createdAt: Date) {
        self.id = id
        self.event = event
        self.body = body
        self.attempts = attempts
        self.lastStatus = lastStatus
        self.lastResponse = lastResponse
        self.lastError = lastError
        self.nextAttemptAt = nextAttemptAt
        self.deliveredAt = deliveredAt
        self.gaveUpAt = gaveUpAt
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id, event, body, attempts
        case lastStatus = "last_status"
        case lastResponse = "last_response"
        case lastError = "last_error"
        case nextAttemptAt = "next_attempt_at"
        case deliveredAt = "delivered_at"
        case gaveUpAt = "gave_up_at"
        case createdAt = "created_at"
    }
}

/// `webhooks.deliveries`: a webhook's latest deliveries, newest first.
public enum WebhooksDeliveries: RPCMethod {
    public static let name = "webhooks.deliveries"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var name: String
        public var limit: Int
        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
        enum CodingKeys: String, CodingKey, CaseIterable { case name, limit }

        public init(name: String, limit: Int = 50) {
            self.name = name
            self.limit = limit
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            limit = try c.decodeInteger(Int.self, forKey: .limit) ?? 50
        }

        public func validate() throws(RPCErrorObject) {
            try SubscriptionName.check(name, field: "name")
            guard (1...1000).contains(limit) else { throw .invalidParams(field: "limit", "must be between 1 and 1000, got \(limit)") }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var deliveries: [WebhookDelivery]
        public init(deliveries: [WebhookDelivery]) { self.deliveries = deliveries }
    }
}

extension RPCErrorObject {
    public static func noSuchWebhook(_ name: String) -> RPCErrorObject {
        RPCErrorObject(.notFound, "No webhook is named \(name). webhooks.list shows the webhooks there are.", data: ["name": .string(name)])
    }
}
