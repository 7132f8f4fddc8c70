import Crypto
import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// What the dashboard keeps: sign-in sessions (`gantry.dashboard_sessions`, so any broker behind a load balancer
/// knows them), the audit log of every action taken from it, and the progress of bulk actions.
public struct DashboardStore: Sendable {
    let storage: Storage
    let logger: Logger

    public init(storage: Storage, logger: Logger) {
        self.storage = storage
        self.logger = logger
    }

    // MARK: sessions

    public struct SignedIn: Sendable, Hashable {
        public var tokenName: String
        public var role: Role
        public var csrf: String
        public var expiresAt: Date
    }

    static func digest(_ sessionID: String) -> [UInt8] { Array(SHA256.hash(data: Data(sessionID.utf8))) }

    public func createSession(id: String, tokenName: String, role: Role, csrf: String, lifetime: Duration) async throws {
        let logger = logger
        let seconds = Double(lifetime.components.seconds)
        try await storage.withConnection { connection in
            try await connection.query("""
                INSERT INTO gantry.dashboard_sessions (digest, token_name, role, csrf, expires_at)
                VALUES (\(ByteBuffer(bytes: Self.digest(id))), \(tokenName), \(role.rawValue), \(csrf), now() + make_interval(secs => \(seconds)))
                """, logger: logger)
            // Expired sessions go as new ones come: the table never grows past the sessions of one lifetime.
            try await connection.query("DELETE FROM gantry.dashboard_sessions WHERE expires_at < now()", logger: logger)
        }
    }

    public func session(id: String) async throws -> SignedIn? {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                SELECT token_name, role, csrf, expires_at FROM gantry.dashboard_sessions
                WHERE digest = \(ByteBuffer(bytes: Self.digest(id))) AND expires_at > now()
                """, logger: logger)
            for try await (name, role, csrf, expires) in rows.decode((String, String, String, Date).self) {
                guard let role = Role(rawValue: role) else { return nil }
                return SignedIn(tokenName: name, role: role, csrf: csrf, expiresAt: expires)
            }
            return nil
        }
    }

    public func deleteSession(id: String) async throws {
        let logger = logger
        try await storage.withConnection { connection in
            try await connection.query(
                "DELETE FROM gantry.dashboard_sessions WHERE digest = \(ByteBuffer(bytes: Self.digest(id)))", logger: logger)
        }
    }

    // MARK: audit

    public struct AuditEntry: Sendable, Hashable {
        public var id: Int64
        public var at: Date
        public var actor: String
        public var action: String
        public var target: String
        public var details: JSONValue?
        public var outcome: String
    }

    public func record(actor: String, action: String, target: String, details: JSONValue?, outcome: String) async throws {
        let logger = logger
        try await storage.withConnection { connection in
            try await connection.query("""
                INSERT INTO gantry.audit_log (actor, action, target, details, outcome)
                VALUES (\(actor), \(action), \(target), \(details)::json, \(outcome))
                """, logger: logger)
        }
    }

    /// Newest first, paged by id.
    public func audit(before: Int64?, limit: Int) async throws -> [AuditEntry] {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                SELECT id, at, actor, action, target, details, outcome FROM gantry.audit_log
                WHERE id < \(before ?? Int64.max) ORDER BY id DESC LIMIT \(limit)
                """, logger: logger)
            var entries: [AuditEntry] = []
            for try await row in rows.decode((Int64, Date, String, String, String, JSONValue?, String).self) {
                entries.append(AuditEntry(id: row.0, at: row.1, actor: row.2, action: row.3, target: row.4, details: row.5, outcome: row.6))
            }
            return entries
        }
    }

    // MARK: bulk actions

    public struct BulkAction: Sendable, Hashable {
        public var id: Int64
        public var action: String
        public var filter: JSONValue
        public var actor: String
        public var state: String
        public var matched: Int64
        public var done: Int64
        public var skipped: Int64
        public var error: String?
        public var startedAt: Date
        public var finishedAt: Date?
    }

    private static let bulkColumns = "id, action, filter, actor, state, matched, done, skipped, error, started_at, finished_at"

    private func bulkActions(_ rows: PostgresRowSequence) async throws -> [BulkAction] {
        var actions: [BulkAction] = []
        for try await row in rows.decode((Int64, String, JSONValue, String, String, Int64, Int64, Int64, String?, Date, Date?).self) {
            actions.append(BulkAction(id: row.0, action: row.1, filter: row.2, actor: row.3, state: row.4, matched: row.5,
                                      done: row.6, skipped: row.7, error: row.8, startedAt: row.9, finishedAt: row.10))
        }
        return actions
    }

    public func startBulkAction(action: String, filter: JSONValue, actor: String, brokerID: UUID) async throws -> Int64 {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                INSERT INTO gantry.bulk_actions (action, filter, actor, broker_id, state)
                VALUES (\(action), \(filter)::json, \(actor), \(brokerID), 'running') RETURNING id
                """, logger: logger)
            for try await id in rows.decode(Int64.self) { return id }
            throw JobStore.InsertedRowMissing()
        }
    }

    public func progress(bulkAction id: Int64, matched: Int64, done: Int64, skipped: Int64, finished: Bool, error: String? = nil) async throws {
        let logger = logger
        let state = error != nil ? "failed" : finished ? "completed" : "running"
        try await storage.withConnection { connection in
            try await connection.query("""
                UPDATE gantry.bulk_actions SET matched = \(matched), done = \(done), skipped = \(skipped), state = \(state),
                    error = \(error), finished_at = CASE WHEN \(state) = 'running' THEN NULL ELSE now() END
                WHERE id = \(id)
                """, logger: logger)
        }
    }

    public func bulkAction(id: Int64) async throws -> BulkAction? {
        let logger = logger
        return try await storage.withConnection { connection in
            try await bulkActions(connection.query(
                "SELECT \(unescaped: Self.bulkColumns) FROM gantry.bulk_actions WHERE id = \(id)", logger: logger)).first
        }
    }

    /// A broker that stopped while running one leaves it `running`: such actions of brokers no longer
    /// heartbeating are marked failed, saying how to finish.
    public func failAbandonedBulkActions() async throws {
        let logger = logger
        try await storage.withConnection { connection in
            try await connection.query("""
                UPDATE gantry.bulk_actions a SET state = 'failed', finished_at = now(),
                    error = 'the broker running it stopped; run it again to finish the rest'
                WHERE a.state = 'running' AND NOT EXISTS (
                    SELECT 1 FROM gantry.brokers b WHERE b.id = a.broker_id AND b.heartbeat_at > now() - interval '1 minute')
                """, logger: logger)
        }
    }
}

// MARK: what the overview shows
extension DashboardStore {
    public struct BrokerRow: Sendable, Hashable {
        public var id: UUID
        public var host: String
        public var version: String
        public var startedAt: Date
        public var heartbeatAt: Date
    }

    /// Brokers heard from within the last minute.
    public func liveBrokers() async throws -> [BrokerRow] {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                SELECT id, host, version, started_at, heartbeat_at FROM gantry.brokers
                WHERE heartbeat_at > now() - interval '1 minute' ORDER BY started_at
                """, logger: logger)
            var brokers: [BrokerRow] = []
            for try await row in rows.decode((UUID, String, String, Date, Date).self) {
                brokers.append(BrokerRow(id: row.0, host: row.1, version: row.2, startedAt: row.3, heartbeatAt: row.4))
            }
            return brokers
        }
    }

    /// Processed and failed attempts per minute over the last `minutes`, oldest first, every minute present.
    public func activity(minutes: Int) async throws -> [(minute: Date, processed: Int64, failed: Int64)] {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                SELECT m.minute,
                       coalesce(sum(a.value) FILTER (WHERE a.counter = 'processed'), 0)::int8,
                       coalesce(sum(a.value) FILTER (WHERE a.counter = 'failed'), 0)::int8
                FROM generate_series(date_trunc('minute', now()) - make_interval(mins => \(minutes - 1)::int4), date_trunc('minute', now()),
                                     interval '1 minute') AS m(minute)
                LEFT JOIN gantry.queue_activity a ON a.minute = m.minute
                GROUP BY m.minute ORDER BY m.minute
                """, logger: logger)
            var points: [(Date, Int64, Int64)] = []
            for try await row in rows.decode((Date, Int64, Int64).self) { points.append(row) }
            return points.map { (minute: $0.0, processed: $0.1, failed: $0.2) }
        }
    }
}
