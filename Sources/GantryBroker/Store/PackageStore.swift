import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Packages (`gantry.packages`) and their executions: operations started from a package, which carry its name
/// and the config they run with (Migration0015). Starting one is `gantry.run_package`, for a run by hand, a cron
/// tick and an event alike.
public struct PackageStore: Sendable {
    let storage: Storage
    let logger: Logger

    public init(storage: Storage, logger: Logger) {
        self.storage = storage
        self.logger = logger
    }

    // MARK: packages

    private static let columns = """
        p.name, p.description, p.steps::text, p.config, p.cron, p.timezone, p.events, p.manual, p.active, p.queue, p.source,
        p.next_run_at, p.created_at, p.updated_at
        """
    private typealias Row = (String, String?, String, JSONValue, String?, String, [String], Bool, Bool, String, String, Date?, Date, Date)

    private static func package(_ row: Row) throws -> Package {
        Package(
            name: row.0, description: row.1, steps: try GantryJSON.makeDecoder().decode([OperationEntry].self, from: Data(row.2.utf8)),
            config: row.3, triggers: PackageTriggers(cron: row.4, timezone: row.5, events: row.6, manual: row.7), active: row.8,
            queue: row.9, source: row.10, nextRunAt: row.8 ? row.11 : nil, createdAt: row.12, updatedAt: row.13)
    }

    private func packages(_ rows: PostgresRowSequence) async throws -> [Package] {
        var found: [Package] = []
        for try await row in rows.decode(Row.self) { found.append(try Self.package(row)) }
        return found
    }

    /// Creates or replaces a package. The next cron tick stays unless the schedule changed or the package was
    /// inactive, so re-applying a config file on every start neither skips nor repeats a tick.
    public func upsert(_ params: PackagesUpsert.Params, steps: [OperationEntry], triggers: PackageTriggers, nextRunAt: Date?,
                       source: String) async throws -> (Package, created: Bool) {
        let stepsText = String(decoding: try GantryJSON.makeEncoder().encode(steps), as: UTF8.self)
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                INSERT INTO gantry.packages AS p (name, description, steps, config, cron, timezone, events, manual, active, queue, source, next_run_at)
                VALUES (\(params.name), \(params.description), \(stepsText)::json, \(params.config)::jsonb, \(triggers.cron),
                        \(triggers.timezone), \(triggers.events)::text[], \(triggers.manual), \(params.active), \(params.queue), \(source), \(nextRunAt))
                ON CONFLICT (name) DO UPDATE
                SET description = excluded.description, steps = excluded.steps, config = excluded.config, cron = excluded.cron,
                    timezone = excluded.timezone, events = excluded.events, manual = excluded.manual, active = excluded.active,
                    queue = excluded.queue, source = excluded.source, updated_at = now(),
                    next_run_at = CASE
                        WHEN p.active AND p.cron = excluded.cron AND p.timezone = excluded.timezone AND p.next_run_at IS NOT NULL THEN p.next_run_at
                        ELSE excluded.next_run_at END
                RETURNING \(unescaped: Self.columns), (xmax = 0) AS created
                """, logger: logger)
            for try await row in rows.decode((String, String?, String, JSONValue, String?, String, [String], Bool, Bool, String, String, Date?, Date, Date, Bool).self) {
                let package = try Self.package((row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10, row.11, row.12, row.13))
                return (package, row.14)
            }
            throw JobStore.InsertedRowMissing()
        }
    }

    public func list() async throws -> [Package] {
        let logger = logger
        return try await storage.withConnection { connection in
            try await packages(connection.query("SELECT \(unescaped: Self.columns) FROM gantry.packages p ORDER BY p.name", logger: logger))
        }
    }

    public func package(named name: String) async throws -> Package? {
        let logger = logger
        return try await storage.withConnection { connection in
            try await packages(connection.query("SELECT \(unescaped: Self.columns) FROM gantry.packages p WHERE p.name = \(name)", logger: logger)).first
        }
    }

    public enum DeleteOutcome: Sendable {
        case deleted, notFound
        /// Subscriptions whose target is the package.
        case targeted(by: [String])
    }

    public func delete(_ name: String) async throws -> DeleteOutcome {
        let logger = logger
        return try await storage.withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection -> DeleteOutcome in
                let targeting = try await connection.query("""
                    SELECT name FROM gantry.subscriptions WHERE target::jsonb ->> 'package' = \(name) ORDER BY name
                    """, logger: logger)
                var subscriptions: [String] = []
                for try await subscription in targeting.decode(String.self) { subscriptions.append(subscription) }
                if !subscriptions.isEmpty { return .targeted(by: subscriptions) }
                let rows = try await connection.query("DELETE FROM gantry.packages WHERE name = \(name) RETURNING name", logger: logger)
                return try await rows.decode(String.self).first(where: { _ in true }) != nil ? .deleted : .notFound
            }
        }
    }

    /// The packages a config file made.
    public func configuredNames() async throws -> [String] {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("SELECT name FROM gantry.packages WHERE source = 'config' ORDER BY name", logger: logger)
            var names: [String] = []
            for try await name in rows.decode(String.self) { names.append(name) }
            return names
        }
    }

    /// Starts an execution (one statement: committed when it answers); nil when the package is gone or inactive
    /// (the caller checked it a moment before).
    public func run(_ name: String, overrides: JSONValue?, startedBy: ExecutionTrigger) async throws -> Int64? {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                SELECT gantry.run_package(\(name), \(overrides)::jsonb, \(startedBy.rawValue))
                """, logger: logger)
            return try await rows.decode(Int64?.self).first(where: { _ in true }) ?? nil
        }
    }

    // MARK: cron

    public struct Due: Sendable {
        public var packages: [Package]
        /// The database's clock, which every broker's ticks are measured against.
        public var now: Date
        /// The earliest next tick of an active package that is not due yet.
        public var nextDueAt: Date?
    }

    public func due(limit: Int) async throws -> Due {
        let logger = logger
        return try await storage.withConnection { connection in
            let due = try await packages(connection.query("""
                SELECT \(unescaped: Self.columns) FROM gantry.packages p
                WHERE p.active AND p.next_run_at <= now() ORDER BY p.next_run_at LIMIT \(limit)
                """, logger: logger))
            let rows = try await connection.query("""
                SELECT now(), min(next_run_at) FROM gantry.packages WHERE active AND next_run_at > now()
                """, logger: logger)
            for try await (now, next) in rows.decode((Date, Date?).self) { return Due(packages: due, now: now, nextDueAt: next) }
            return Due(packages: due, now: Date(), nextDueAt: nil)
        }
    }

    /// Fires one tick: moves the next tick to `next` and starts an execution, in one transaction. Nil when
    /// another broker fired that tick first, or the package changed or went inactive meanwhile.
    public func fire(_ name: String, tick: Date, next: Date?) async throws -> Int64? {
        let logger = logger
        return try await storage.withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection -> Int64? in
                let claimed = try await connection.query("""
                    UPDATE gantry.packages SET next_run_at = \(next), last_run_at = now()
                    WHERE name = \(name) AND active AND next_run_at = \(tick)
                    RETURNING name
                    """, logger: logger)
                guard try await claimed.decode(String.self).first(where: { _ in true }) != nil else { return nil }
                let rows = try await connection.query("SELECT gantry.run_package(\(name), NULL, 'cron')", logger: logger)
                return try await rows.decode(Int64?.self).first(where: { _ in true }) ?? nil
            }
        }
    }

    /// Stops a package's cron trigger (its expression can no longer be read); it stays startable otherwise.
    public func stopCron(_ name: String) async throws {
        let logger = logger
        try await storage.withConnection { connection in
            try await connection.query("UPDATE gantry.packages SET next_run_at = NULL WHERE name = \(name)", logger: logger)
        }
    }
}
