import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Events (`gantry.events`) and subscriptions (`gantry.subscriptions`). Publishing is `gantry.publish`
/// (Migration0014), the same function applications call from SQL, run here in an explicit transaction so the
/// answer comes only after the event and what it started are committed.
public struct EventStore: Sendable {
    let storage: Storage
    let logger: Logger

    public init(storage: Storage, logger: Logger) {
        self.storage = storage
        self.logger = logger
    }

    // MARK: events

    public func publish(_ params: EventsPublish.Params) async throws -> EventsPublish.Result {
        try await publish(type: params.type, payload: params.payload, key: params.key, dedupeMs: params.dedupeMs, replayOf: nil)
    }

    /// Publishes the event's type and payload again, recorded as its replay; nil when there is no such event.
    public func replay(id: Int64) async throws -> EventsPublish.Result? {
        let logger = logger
        let original = try await storage.withConnection { connection in
            let rows = try await connection.query("SELECT type, payload FROM gantry.events WHERE id = \(id)", logger: logger)
            return try await rows.decode((String, JSONValue).self).first(where: { _ in true })
        }
        guard let (type, payload) = original else { return nil }
        return try await publish(type: type, payload: payload, key: nil, dedupeMs: 0, replayOf: id)
    }

    private func publish(type: String, payload: JSONValue, key: String?, dedupeMs: Int64, replayOf: Int64?) async throws -> EventsPublish.Result {
        let logger = logger
        return try await storage.withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection in
                let rows = try await connection.query("""
                    SELECT gantry.publish(\(type), \(payload)::json, \(key), \(dedupeMs), \(replayOf))
                    """, logger: logger)
                guard let answer = try await rows.decode(JSONValue.self).first(where: { _ in true }) else { throw JobStore.InsertedRowMissing() }
                return try JSONValueDecoder.decode(EventsPublish.Result.self, from: answer)
            }
        }
    }

    private static let columns = "e.id, e.type, e.payload, e.key, e.replay_of, e.published_at, e.triggered"
    private typealias Row = (Int64, String, JSONValue, String?, Int64?, Date, JSONValue)

    private static func event(_ row: Row) throws -> Event {
        Event(id: String(row.0), type: row.1, payload: row.2, key: row.3, replayOf: row.4.map { String($0) }, publishedAt: row.5,
              triggered: try JSONValueDecoder.decode([EventTrigger].self, from: row.6))
    }

    /// The event, with the state now of every job and operation it started.
    public func get(id: Int64) async throws -> Event? {
        let logger = logger
        return try await storage.withConnection { connection -> Event? in
            let rows = try await connection.query("SELECT \(unescaped: Self.columns) FROM gantry.events e WHERE e.id = \(id)", logger: logger)
            guard let row = try await rows.decode(Row.self).first(where: { _ in true }) else { return nil }
            var event = try Self.event(row)
            let jobIDs = event.triggered.compactMap { $0.jobID.flatMap(Int64.init) }
            let operationIDs = event.triggered.compactMap { $0.operationID.flatMap(Int64.init) }
            var states: [String: String] = [:]
            let found = try await connection.query("""
                SELECT 'job:' || id, state FROM gantry.jobs WHERE id = ANY(\(jobIDs)::bigint[])
                UNION ALL SELECT 'job:' || id, state FROM gantry.finished_jobs WHERE id = ANY(\(jobIDs)::bigint[])
                UNION ALL SELECT 'operation:' || id, state FROM gantry.operations WHERE id = ANY(\(operationIDs)::bigint[])
                """, logger: logger)
            for try await (key, state) in found.decode((String, String).self) { states[key] = state }
            for index in event.triggered.indices {
                let trigger = event.triggered[index]
                // Gone: cleaned up after its retention.
                event.triggered[index].state = trigger.jobID.map { states["job:" + $0] ?? "deleted" }
                    ?? trigger.operationID.map { states["operation:" + $0] ?? "deleted" }
            }
            return event
        }
    }

    public func list(_ params: EventsList.Params) async throws -> EventsList.Result {
        let logger = logger
        let beforeID = params.cursor.flatMap(Int64.init)
        let exact = params.type.flatMap { $0.hasSuffix("*") ? nil : $0 }
        let prefix = params.type.flatMap { $0.hasSuffix("*") ? String($0.dropLast()) : nil }
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                SELECT \(unescaped: Self.columns) FROM gantry.events e
                WHERE (\(exact)::text IS NULL OR e.type = \(exact))
                  AND (\(prefix)::text IS NULL OR starts_with(e.type, \(prefix)))
                  AND (\(params.since)::timestamptz IS NULL OR e.published_at >= \(params.since))
                  AND (\(beforeID)::bigint IS NULL OR e.id < \(beforeID))
                ORDER BY e.id DESC LIMIT \(params.limit + 1)
                """, logger: logger)
            var events: [Event] = []
            for try await row in rows.decode(Row.self) { events.append(try Self.event(row)) }
            let more = events.count > params.limit
            if more { events.removeLast() }
            return EventsList.Result(events: events, nextCursor: more ? events.last?.id : nil)
        }
    }

    /// Deletes up to `batch` events published more than `olderThanMs` ago (what they started lives on).
    public func prune(olderThanMs: Int64, batch: Int = 1000, now: Date? = nil) async throws -> Int {
        let logger = logger
        return try await storage.withConnection { connection -> Int in
            let rows = try await connection.query("""
                WITH doomed AS (
                    SELECT id FROM gantry.events
                    WHERE published_at < coalesce(\(now)::timestamptz, now()) - \(olderThanMs) * interval '1 millisecond'
                    ORDER BY published_at LIMIT \(batch)
                    FOR UPDATE SKIP LOCKED
                ), deleted AS (
                    DELETE FROM gantry.events e USING doomed WHERE e.id = doomed.id RETURNING 1
                )
                SELECT count(*) FROM deleted
                """, logger: logger)
            return Int(try await rows.decode(Int64.self).first(where: { _ in true }) ?? 0)
        }
    }

    // MARK: subscriptions

    private static let subscriptionColumns = "name, event, filter, target, paused_at IS NOT NULL, source, created_at, updated_at"
    private typealias SubscriptionRow = (String, String, JSONValue?, JSONValue, Bool, String, Date, Date)

    private func subscriptions(_ rows: PostgresRowSequence) async throws -> [Subscription] {
        var found: [Subscription] = []
        for try await row in rows.decode(SubscriptionRow.self) {
            found.append(Subscription(name: row.0, event: row.1, filter: row.2, target: row.3, paused: row.4, source: row.5, createdAt: row.6, updatedAt: row.7))
        }
        return found
    }

    public func upsert(_ params: SubscriptionsUpsert.Params, target: SubscriptionTarget, source: String = "rpc") async throws -> (Subscription, created: Bool) {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                INSERT INTO gantry.subscriptions AS s (name, event, filter, target, source)
                VALUES (\(params.name), \(params.event), \(params.filter)::jsonb, \(target.value)::json, \(source))
                ON CONFLICT (name) DO UPDATE
                SET event = excluded.event, filter = excluded.filter, target = excluded.target, source = excluded.source, updated_at = now()
                RETURNING \(unescaped: Self.subscriptionColumns), (xmax = 0) AS created
                """, logger: logger)
            for try await row in rows.decode((String, String, JSONValue?, JSONValue, Bool, String, Date, Date, Bool).self) {
                return (Subscription(name: row.0, event: row.1, filter: row.2, target: row.3, paused: row.4, source: row.5, createdAt: row.6, updatedAt: row.7), row.8)
            }
            throw JobStore.InsertedRowMissing()
        }
    }

    public func subscriptions() async throws -> [Subscription] {
        let logger = logger
        return try await storage.withConnection { connection in
            try await subscriptions(connection.query("SELECT \(unescaped: Self.subscriptionColumns) FROM gantry.subscriptions ORDER BY name", logger: logger))
        }
    }

    public func deleteSubscription(_ name: String) async throws -> Bool {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("DELETE FROM gantry.subscriptions WHERE name = \(name) RETURNING name", logger: logger)
            return try await rows.decode(String.self).first(where: { _ in true }) != nil
        }
    }

    /// Removes subscriptions a config file made that it no longer names.
    public func removeConfigured(except kept: [String]) async throws -> [String] {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                DELETE FROM gantry.subscriptions WHERE source = 'config' AND NOT name = ANY(\(kept)::text[]) RETURNING name
                """, logger: logger)
            var removed: [String] = []
            for try await name in rows.decode(String.self) { removed.append(name) }
            return removed
        }
    }

    public func setPaused(_ name: String, _ paused: Bool) async throws -> Subscription? {
        let logger = logger
        return try await storage.withConnection { connection in
            try await subscriptions(connection.query("""
                UPDATE gantry.subscriptions
                SET paused_at = CASE WHEN \(paused) THEN coalesce(paused_at, now()) END, updated_at = now()
                WHERE name = \(name)
                RETURNING \(unescaped: Self.subscriptionColumns)
                """, logger: logger)).first
        }
    }
}
