import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Webhooks (`gantry.webhooks`) and their outbox (`gantry.webhook_deliveries`), which `gantry.emit`
/// (Migration0016) fills in the transaction of the change it reports; the deliverer claims due rows, POSTs them
/// and records what happened.
public struct WebhookStore: Sendable {
    /// The NOTIFY channel `gantry.emit` tells every broker on.
    public static let watchChannel = "gantry_watch"
    /// After this many failed attempts a delivery is given up on (about a day of backoff).
    public static let maxAttempts = 25

    let storage: Storage
    let logger: Logger

    public init(storage: Storage, logger: Logger) {
        self.storage = storage
        self.logger = logger
    }

    private static let columns = "name, url, events, queues, source, created_at, updated_at"
    private typealias Row = (String, String, [String], [String]?, String, Date, Date)

    private static func webhook(_ row: Row) -> Webhook {
        Webhook(name: row.0, url: row.1, events: row.2, queues: row.3, source: row.4, createdAt: row.5, updatedAt: row.6)
    }

    public func upsert(_ params: WebhooksUpsert.Params, source: String) async throws -> (Webhook, created: Bool) {
        let logger = logger
        let events = try LifecycleEvent.parse(params.events, field: "events").map(\.rawValue)
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                INSERT INTO gantry.webhooks AS w (name, url, events, queues, secret, source)
                VALUES (\(params.name), \(params.url), \(events)::text[], \(params.queues)::text[], \(params.secret), \(source))
                ON CONFLICT (name) DO UPDATE
                SET url = excluded.url, events = excluded.events, queues = excluded.queues, secret = excluded.secret,
                    source = excluded.source, updated_at = now()
                RETURNING \(unescaped: Self.columns), (xmax = 0) AS created
                """, logger: logger)
            for try await row in rows.decode((String, String, [String], [String]?, String, Date, Date, Bool).self) {
                return (Self.webhook((row.0, row.1, row.2, row.3, row.4, row.5, row.6)), row.7)
            }
            throw JobStore.InsertedRowMissing()
        }
    }

    public func list() async throws -> [Webhook] {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("SELECT \(unescaped: Self.columns) FROM gantry.webhooks ORDER BY name", logger: logger)
            var found: [Webhook] = []
            for try await row in rows.decode(Row.self) { found.append(Self.webhook(row)) }
            return found
        }
    }

    public func delete(_ name: String) async throws -> Bool {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("DELETE FROM gantry.webhooks WHERE name = \(name) RETURNING name", logger: logger)
            return try await rows.decode(String.self).first(where: { _ in true }) != nil
        }
    }

    /// Removes webhooks a config file made that it no longer names.
    public func removeConfigured(except kept: [String]) async throws -> [String] {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                DELETE FROM gantry.webhooks WHERE source = 'config' AND NOT name = ANY(\(kept)::text[]) RETURNING name
                """, logger: logger)
            var removed: [String] = []
            for try await name in rows.decode(String.self) { removed.append(name) }
            return removed
        }
    }

    /// The webhook's latest deliveries, newest first; nil when there is no such webhook.
    public func deliveries(_ params: WebhooksDeliveries.Params) async throws -> [WebhookDelivery]? {
        let logger = logger
        return try await storage.withConnection { connection -> [WebhookDelivery]? in
            let known = try await connection.query("SELECT 1 FROM gantry.webhooks WHERE name = \(params.name)", logger: logger)
            guard try await known.decode(Int32.self).first(where: { _ in true }) != nil else { return nil }
            let rows = try await connection.query("""
                SELECT id::text, event, body, attempts, last_status, last_response, last_error,
                       CASE WHEN delivered_at IS NULL AND gave_up_at IS NULL THEN next_attempt_at END,
                       delivered_at, gave_up_at, created_at
                FROM gantry.webhook_deliveries WHERE webhook = \(params.name)
                ORDER BY created_at DESC, id LIMIT \(params.limit)
                """, logger: logger)
            var found: [WebhookDelivery] = []
            for try await row in rows.decode((String, String, JSONValue, Int32, Int32?, String?, String?, Date?, Date?, Date?, Date).self) {
                found.append(WebhookDelivery(
                    id: row.0, event: row.1, body: row.2, attempts: Int(row.3), lastStatus: row.4.map(Int.init), lastResponse: row.5,
                    lastError: row.6, nextAttemptAt: row.7, deliveredAt: row.8, gaveUpAt: row.9, createdAt: row.10))
            }
            return found
        }
    }

    /// A delivery to attempt: where, signed with what, and the body as stored.
    public struct Due: Sendable {
        public var id: String
        public var webhook: String
        public var url: String
        public var secret: String
        public var event: String
        public var body: String
        public var attempts: Int
    }

    /// Claims up to `limit` due deliveries for `leaseSeconds` (another broker skips them meanwhile; a broker
    /// that dies mid-attempt leaves them to be tried again when the claim runs out).
    public func claimDue(limit: Int, leaseSeconds: Int) async throws -> [Due] {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                WITH due AS (
                    SELECT id FROM gantry.webhook_deliveries
                    WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= now()
                      AND (locked_until IS NULL OR locked_until < now())
                    ORDER BY next_attempt_at LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED
                ), claimed AS (
                    UPDATE gantry.webhook_deliveries d SET locked_until = now() + \(leaseSeconds) * interval '1 second'
                    FROM due WHERE d.id = due.id
                    RETURNING d.id, d.webhook, d.event, d.body, d.attempts
                )
                SELECT c.id::text, c.webhook, w.url, w.secret, c.event, c.body::text, c.attempts
                FROM claimed c JOIN gantry.webhooks w ON w.name = c.webhook
                """, logger: logger)
            var due: [Due] = []
            for try await row in rows.decode((String, String, String, String, String, String, Int32).self) {
                due.append(Due(id: row.0, webhook: row.1, url: row.2, secret: row.3, event: row.4, body: row.5, attempts: Int(row.6)))
            }
            return due
        }
    }

    /// Records one attempt: delivered (a 2xx), or failed with when to try again, or given up on.
    public func record(id: String, delivered: Bool, status: Int?, response: String?, error: String?, retryIn: Duration?) async throws {
        let logger = logger
        let retryMs = retryIn.map { $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000 }
        try await storage.withConnection { connection in
            try await connection.query("""
                UPDATE gantry.webhook_deliveries
                SET attempts = attempts + 1, locked_until = NULL, last_status = \(status.map(Int32.init)),
                    last_response = \(response), last_error = \(error),
                    delivered_at = CASE WHEN \(delivered) THEN now() END,
                    gave_up_at = CASE WHEN NOT \(delivered) AND \(retryMs)::bigint IS NULL THEN now() END,
                    next_attempt_at = CASE WHEN \(retryMs)::bigint IS NULL THEN next_attempt_at
                                           ELSE now() + \(retryMs) * interval '1 millisecond' END
                WHERE id = \(id)::uuid
                """, logger: logger)
        }
    }

    /// Deletes deliveries finished (delivered or given up) more than `olderThanMs` ago.
    public func prune(olderThanMs: Int64, batch: Int = 1000, now: Date? = nil) async throws -> Int {
        let logger = logger
        return try await storage.withConnection { connection -> Int in
            let rows = try await connection.query("""
                WITH doomed AS (
                    SELECT id FROM gantry.webhook_deliveries
                    WHERE coalesce(delivered_at, gave_up_at) < coalesce(\(now)::timestamptz, now()) - \(olderThanMs) * interval '1 millisecond'
                    LIMIT \(batch) FOR UPDATE SKIP LOCKED
                ), deleted AS (
                    DELETE FROM gantry.webhook_deliveries d USING doomed WHERE d.id = doomed.id RETURNING 1
                )
                SELECT count(*) FROM deleted
                """, logger: logger)
            return Int(try await rows.decode(Int64.self).first(where: { _ in true }) ?? 0)
        }
    }
}
