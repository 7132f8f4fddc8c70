import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Cron schedules (`gantry.cron_schedules`) and firing them. A tick fires in one transaction that moves
/// `next_run_at` on from exactly that tick and enqueues its job: a second broker firing the same tick waits for
/// the first's row lock, then finds `next_run_at` moved and does nothing.
public struct CronStore: Sendable {
    let storage: Storage
    let jobs: JobStore
    let logger: Logger

    public init(storage: Storage, jobs: JobStore, logger: Logger) {
        self.storage = storage
        self.jobs = jobs
        self.logger = logger
    }

    private static let columns = """
        name, cron, timezone, type, args, queue, priority, description, source, paused_at, next_run_at, last_run_at,
        last_job_id, created_at, updated_at
        """

    private typealias Row = (String, String, String, String, JSONValue, String, Int16, String?, String, Date?, Date?, Date?, Int64?, Date, Date)

    private static func schedule(_ row: Row) -> CronSchedule {
        CronSchedule(
            name: row.0, cron: row.1, timezone: row.2, type: row.3, args: row.4, queue: row.5, priority: Int(row.6),
            description: row.7, source: SettingSource(rawValue: row.8) ?? .rpc, paused: row.9 != nil, pausedAt: row.9,
            nextRunAt: row.10, lastRunAt: row.11, lastJobID: row.12.map(String.init), createdAt: row.13, updatedAt: row.14)
    }

    private func schedules(_ rows: PostgresRowSequence) async throws -> [CronSchedule] {
        var schedules: [CronSchedule] = []
        for try await row in rows.decode(Row.self) { schedules.append(Self.schedule(row)) }
        return schedules
    }

    public func list() async throws -> [CronSchedule] {
        let logger = logger
        return try await storage.withConnection { connection in
            try await schedules(connection.query(
                "SELECT \(unescaped: Self.columns) FROM gantry.cron_schedules ORDER BY name", logger: logger))
        }
    }

    public func schedule(named name: String) async throws -> CronSchedule? {
        let logger = logger
        return try await storage.withConnection { connection in
            try await schedules(connection.query(
                "SELECT \(unescaped: Self.columns) FROM gantry.cron_schedules WHERE name = \(name)", logger: logger)).first
        }
    }

    /// Creates or replaces a definition. Paused state and history stay; the next run stays too unless the
    /// expression or time zone changed, so re-applying a config file on every start neither skips nor repeats a tick.
    public func upsert(_ params: CronUpsert.Params, source: SettingSource, nextRunAt: Date?) async throws -> (CronSchedule, created: Bool) {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                INSERT INTO gantry.cron_schedules AS s (name, cron, timezone, type, args, queue, priority, description, source, next_run_at)
                VALUES (\(params.name), \(params.cron), \(params.timezone), \(params.type), \(params.args)::json, \(params.queue),
                        \(params.priority), \(params.description), \(source.rawValue), \(nextRunAt))
                ON CONFLICT (name) DO UPDATE
                SET cron = excluded.cron, timezone = excluded.timezone, type = excluded.type, args = excluded.args,
                    queue = excluded.queue, priority = excluded.priority, description = excluded.description,
                    source = excluded.source, updated_at = now(),
                    next_run_at = CASE
                        WHEN s.paused_at IS NOT NULL THEN NULL
                        WHEN s.cron = excluded.cron AND s.timezone = excluded.timezone AND s.next_run_at IS NOT NULL THEN s.next_run_at
                        ELSE excluded.next_run_at END
                RETURNING \(unescaped: Self.columns), (xmax = 0) AS created
                """, logger: logger)
            for try await row in rows.decode((String, String, String, String, JSONValue, String, Int16, String?, String, Date?, Date?, Date?, Int64?, Date, Date, Bool).self) {
                let schedule = Self.schedule((row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10, row.11, row.12, row.13, row.14))
                return (schedule, row.15)
            }
            throw JobStore.InsertedRowMissing()
        }
    }

    public func delete(_ name: String) async throws -> Bool {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("DELETE FROM gantry.cron_schedules WHERE name = \(name) RETURNING name", logger: logger)
            for try await _ in rows.decode(String.self) { return true }
            return false
        }
    }

    /// Removes schedules a config file made that it no longer names.
    public func removeConfigured(except kept: [String]) async throws -> [String] {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                DELETE FROM gantry.cron_schedules WHERE source = 'config' AND NOT name = ANY(\(kept)::text[]) RETURNING name
                """, logger: logger)
            var removed: [String] = []
            for try await name in rows.decode(String.self) { removed.append(name) }
            return removed
        }
    }

    public func pause(_ name: String) async throws -> CronSchedule? {
        let logger = logger
        return try await storage.withConnection { connection in
            try await schedules(connection.query("""
                UPDATE gantry.cron_schedules
                SET paused_at = coalesce(paused_at, now()), next_run_at = NULL,
                    updated_at = CASE WHEN paused_at IS NULL THEN now() ELSE updated_at END
                WHERE name = \(name)
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)).first
        }
    }

    /// Un-pauses with the given next run (worked out from now by the caller: ticks missed while paused are skipped).
    public func resume(_ name: String, nextRunAt: Date?) async throws -> CronSchedule? {
        let logger = logger
        return try await storage.withConnection { connection in
            try await schedules(connection.query("""
                UPDATE gantry.cron_schedules
                SET paused_at = NULL, updated_at = CASE WHEN paused_at IS NULL THEN updated_at ELSE now() END,
                    next_run_at = CASE WHEN paused_at IS NULL THEN next_run_at ELSE \(nextRunAt) END
                WHERE name = \(name)
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)).first
        }
    }

    public struct DueSchedules: Sendable {
        public var due: [CronSchedule]
        /// The database's clock, which every broker's ticks are measured against.
        public var now: Date
        /// The earliest next run of an active schedule that is not due yet.
        public var nextDueAt: Date?
    }

    public func due(limit: Int = 100) async throws -> DueSchedules {
        let logger = logger
        return try await storage.withConnection { connection in
            let due = try await schedules(connection.query("""
                SELECT \(unescaped: Self.columns) FROM gantry.cron_schedules
                WHERE paused_at IS NULL AND next_run_at <= now() ORDER BY next_run_at LIMIT \(limit)
                """, logger: logger))
            let rows = try await connection.query("""
                SELECT now(), min(next_run_at) FROM gantry.cron_schedules WHERE paused_at IS NULL AND next_run_at > now()
                """, logger: logger)
            for try await (now, next) in rows.decode((Date, Date?).self) { return DueSchedules(due: due, now: now, nextDueAt: next) }
            return DueSchedules(due: due, now: Date(), nextDueAt: nil)
        }
    }

    /// Fires `tick` of a schedule: moves its next run to `next` and enqueues `job` in one transaction. Nil when
    /// the tick was already fired (by another broker) or the schedule was paused, changed or deleted meanwhile.
    /// `missed`, when the tick fires late, is what `cron.missed` reports, raised in the same transaction.
    public func fire(_ name: String, tick: Date, next: Date?, job: Enqueue.Params, missed: JSONValue? = nil) async throws -> (jobID: Int64, state: JobState)? {
        let (logger, jobs) = (logger, jobs)
        return try await storage.withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection in
                let claimed = try await connection.query("""
                    UPDATE gantry.cron_schedules SET next_run_at = \(next), last_run_at = now()
                    WHERE name = \(name) AND paused_at IS NULL AND next_run_at = \(tick)
                    RETURNING name
                    """, logger: logger)
                var won = false
                for try await _ in claimed.decode(String.self) { won = true }
                guard won else { return nil }
                guard let inserted = try await jobs.insertRows([job], on: connection).first else { throw JobStore.InsertedRowMissing() }
                try await connection.query(
                    "UPDATE gantry.cron_schedules SET last_job_id = \(inserted.id) WHERE name = \(name)", logger: logger)
                if let missed {
                    try await connection.query(
                        "SELECT gantry.emit(\(LifecycleEvent.cronMissed.rawValue), \(job.queue), \(missed)::jsonb)", logger: logger)
                }
                return (inserted.id, inserted.state)
            }
        }
    }

    /// Enqueues one run now, paused or not, leaving the next tick where it is. Nil when there is no such schedule.
    public func trigger(_ name: String, job: @escaping @Sendable (CronSchedule) -> Enqueue.Params) async throws -> (jobID: Int64, state: JobState, schedule: CronSchedule)? {
        let (logger, jobs) = (logger, jobs)
        return try await storage.withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection in
                guard let schedule = try await schedules(connection.query(
                    "SELECT \(unescaped: Self.columns) FROM gantry.cron_schedules WHERE name = \(name) FOR UPDATE", logger: logger)).first
                else { return nil }
                guard let inserted = try await jobs.insertRows([job(schedule)], on: connection).first else { throw JobStore.InsertedRowMissing() }
                let updated = try await schedules(connection.query("""
                    UPDATE gantry.cron_schedules SET last_run_at = now(), last_job_id = \(inserted.id) WHERE name = \(name)
                    RETURNING \(unescaped: Self.columns)
                    """, logger: logger)).first ?? schedule
                return (inserted.id, inserted.state, updated)
            }
        }
    }
}
