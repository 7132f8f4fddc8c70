import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Reads: a job, a filtered list, states, counts per queue.
extension JobStore {

    /// The whole job, live or finished; nil when there is none with that id.
    public func job(id: Int64) async throws -> Job? {
        let rows = try await storage.pipelines.execute(JobByIDStatement.pipelined, JobByIDStatement(id: id).pipelineParameters)
        return rows.count == 0 ? nil : try Self.decodeJob(rows, row: 0)
    }

    /// What `jobs.list` filters on; nil means any.
    public struct JobFilter: Sendable {
        public var queue: String?
        public var state: JobState?
        public var type: String?
        public var tag: String?
        /// Jobs whose args contain this (JSON containment, `{"user_id": 7}`), found through a GIN index.
        public var args: JSONValue?
        public var enqueuedAfter: Date?
        public var enqueuedBefore: Date?
        /// Only jobs with a smaller id (older): the cursor of the previous page.
        public var beforeID: Int64?

        public init(queue: String? = nil, state: JobState? = nil, type: String? = nil, tag: String? = nil, args: JSONValue? = nil,
                    enqueuedAfter: Date? = nil, enqueuedBefore: Date? = nil, beforeID: Int64? = nil) {
            self.queue = queue
            self.state = state
            self.type = type
            self.tag = tag
            self.args = args
            self.enqueuedAfter = enqueuedAfter
            self.enqueuedBefore = enqueuedBefore
            self.beforeID = beforeID
        }
    }

    /// Jobs newest first, live and finished, paged by id (a keyset cursor, so deep pages cost no more than the
    /// first). PostgreSQL pushes the filters into both tables and merges their primary-key scans.
    public func listJobs(_ filter: JobFilter, limit: Int) async throws -> [Job] {
        let logger = logger
        var (conditions, bindings) = try Self.conditions(filter)
        bindings.append(limit)
        let sql = """
            SELECT * FROM (
                SELECT \(Self.liveJobColumns) FROM gantry.jobs
                UNION ALL
                SELECT \(Self.finishedJobColumns) FROM gantry.finished_jobs
            ) AS every_job
            \(conditions)
            ORDER BY id DESC LIMIT $\(bindings.count)::bigint
            """
        let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
        return try await storage.withConnection { connection -> [Job] in
            var jobs: [Job] = []
            for try await row in try await connection.query(query, logger: logger) { jobs.append(try Self.decodeJob(row)) }
            return jobs
        }
    }

    /// How many jobs match, counting no further than `atMost` (so a filter matching millions costs no more than
    /// reading `atMost` index entries): the dashboard's "all 1,234 matching" or "all 10,000+ matching". Ordered by
    /// id like the list, so the plan walks the same indexes and stops, instead of a bitmap scan of every match.
    public func countJobs(_ filter: JobFilter, atMost: Int) async throws -> Int {
        let logger = logger
        var (conditions, bindings) = try Self.conditions(filter)
        bindings.append(atMost + 1)
        let sql = """
            SELECT count(*)::int8 FROM (
                SELECT 1 FROM (
                    SELECT id, queue, type, state, tags, args, enqueued_at FROM gantry.jobs
                    UNION ALL
                    SELECT id, queue, type, state, tags, args, enqueued_at FROM gantry.finished_jobs
                ) AS every_job
                \(conditions)
                ORDER BY id DESC LIMIT $\(bindings.count)::bigint
            ) AS matching
            """
        let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
        return try await storage.withConnection { connection -> Int in
            for try await count in try await connection.query(query, logger: logger).decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    /// The WHERE clause of a filter: only the filters given become conditions (each value a bind), so the plan
    /// can use the indexes they need.
    private static func conditions(_ filter: JobFilter) throws -> (String, PostgresBindings) {
        var bindings = PostgresBindings()
        var conditions: [String] = []
        func condition(_ sql: (String) -> String, _ value: some PostgresDynamicTypeEncodable) {
            bindings.append(value)
            conditions.append(sql("$\(bindings.count)"))
        }
        if let state = filter.state { condition({ "state = \($0)::text" }, state.rawValue) }
        if let queue = filter.queue { condition({ "queue = \($0)::text" }, queue) }
        if let type = filter.type { condition({ "type = \($0)::text" }, type) }
        if let tag = filter.tag { condition({ "\($0)::text = ANY(tags)" }, tag) }
        if let args = filter.args {
            try bindings.append(args)
            conditions.append("args::jsonb @> $\(bindings.count)::jsonb")
        }
        if let after = filter.enqueuedAfter { condition({ "enqueued_at >= \($0)::timestamptz" }, after) }
        if let before = filter.enqueuedBefore { condition({ "enqueued_at < \($0)::timestamptz" }, before) }
        if let beforeID = filter.beforeID { condition({ "id < \($0)::bigint" }, beforeID) }
        return (conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "), bindings)
    }

    /// The columns `decodeJob` reads, from each table (each lacks a few the other has).
    static let liveJobColumns = """
        id, type, queue, args, state, priority, attempt, max_attempts, run_at, enqueued_at, reserved_at,
        lease_expires_at, NULL::timestamptz AS finished_at, timeout_ms, expires_at, unique_key, tags, meta, errors,
        NULL::json AS result, cancel_requested_at
        """
    static let finishedJobColumns = """
        id, type, queue, args, state, priority, attempt, max_attempts, run_at, enqueued_at, reserved_at,
        NULL::timestamptz AS lease_expires_at, finished_at, timeout_ms, expires_at, unique_key, tags, meta, errors,
        result, cancel_requested_at
        """

    static func decodeJob(_ row: PostgresRow) throws -> Job {
        let (id, type, queue, args, state, priority, attempt, maxAttempts, runAt, enqueuedAt) =
            try row.decode((Int64, String, String, JSONValue, String, Int16, Int32, Int32, Date, Date).self)
        let columns = Array(row)
        return Job(
            id: String(id), type: type, queue: queue, args: args, state: JobState(rawValue: state) ?? .available,
            priority: Int(priority), attempt: Int(attempt), maxAttempts: Int(maxAttempts), runAt: runAt,
            enqueuedAt: enqueuedAt, reservedAt: try columns[10].decode(Date?.self),
            leaseExpiresAt: try columns[11].decode(Date?.self), finishedAt: try columns[12].decode(Date?.self),
            timeoutMs: try columns[13].decode(Int64?.self), expiresAt: try columns[14].decode(Date?.self),
            uniqueKey: try columns[15].decode(String?.self), tags: try columns[16].decode([String].self),
            meta: try columns[17].decode(JSONValue.self), errors: try decodeErrors(try columns[18].decode(JSONValue.self)),
            result: try columns[19].decode(JSONValue?.self), cancelRequestedAt: try columns[20].decode(Date?.self))
    }

    /// `decodeJob` for a row of the pipelines, which come in binary.
    static func decodeJob(_ rows: PipelineRows, row: Int) throws -> Job {
        Job(
            id: String(try rows.int64(row, 0)), type: rows.string(row, 1), queue: rows.string(row, 2), args: try rows.json(row, 3),
            state: JobState(rawValue: rows.string(row, 4)) ?? .available, priority: Int(try rows.int16(row, 5)),
            attempt: Int(try rows.int32(row, 6)), maxAttempts: Int(try rows.int32(row, 7)), runAt: try rows.date(row, 8),
            enqueuedAt: try rows.date(row, 9), reservedAt: try rows.optionalDate(row, 10),
            leaseExpiresAt: try rows.optionalDate(row, 11), finishedAt: try rows.optionalDate(row, 12),
            timeoutMs: try rows.optionalInt64(row, 13), expiresAt: try rows.optionalDate(row, 14),
            uniqueKey: rows.optionalString(row, 15), tags: try rows.textArray(row, 16), meta: try rows.json(row, 17),
            errors: try decodeErrors(try rows.json(row, 18, jsonb: true)), result: try rows.optionalJSON(row, 19),
            cancelRequestedAt: try rows.optionalDate(row, 20))
    }

    /// The state of a job, to tell "lease lost" from "no such job" when a lease check fails.
    public func jobState(id: Int64) async throws -> JobState? {
        try await jobStates(ids: [id])[id]
    }

    /// The states of the jobs that exist among `ids`.
    public func jobStates(ids: [Int64]) async throws -> [Int64: JobState] {
        try await storage.withConnection { connection -> [Int64: JobState] in
            let rows = try await connection.query("""
                SELECT id, state FROM gantry.jobs WHERE id = ANY(\(ids))
                UNION ALL SELECT id, state FROM gantry.finished_jobs WHERE id = ANY(\(ids))
                """, logger: logger)
            var states: [Int64: JobState] = [:]
            for try await (id, state) in rows.decode((Int64, String).self) { states[id] = JobState(rawValue: state) }
            return states
        }
    }

    private static func decodeErrors(_ value: JSONValue) throws -> [JobError] {
        try JSONValueDecoder.decode([JobError].self, from: value)
    }

    /// Counts per queue from the trigger-maintained counters, and each queue's oldest available job's age.
    public func queueStats() async throws -> [String: Stats.QueueStats] {
        return try await storage.withConnection { connection -> [String: Stats.QueueStats] in
            let rows = try await connection.query("""
                WITH totals AS (
                    SELECT queue, counter, sum(value)::int8 AS value FROM gantry.queue_counters GROUP BY queue, counter
                ), queues AS (SELECT DISTINCT queue FROM totals)
                SELECT queue, counter, value FROM totals
                UNION ALL
                -- Sliding windows over minute buckets: the oldest bucket counts for the part of it inside the window.
                SELECT a.queue, a.counter || '_' || w.name,
                       sum(a.value * least(1, greatest(0,
                           extract(epoch FROM a.minute + interval '1 minute' - (now() - w.span)) / 60)))::int8
                FROM gantry.queue_activity a
                CROSS JOIN (VALUES ('last_minute', interval '1 minute'), ('last_hour', interval '1 hour')) AS w(name, span)
                WHERE a.minute > now() - w.span - interval '1 minute'
                GROUP BY a.queue, a.counter, w.name
                UNION ALL
                SELECT q.queue, 'latency_ms',
                       coalesce((SELECT (extract(epoch FROM now() - min(run_at)) * 1000)::int8 FROM (
                           SELECT run_at FROM gantry.jobs WHERE queue = q.queue AND state = 'available'
                           ORDER BY run_at LIMIT 1) AS oldest), 0)
                FROM queues q
                """, logger: logger)
            var stats: [String: Stats.QueueStats] = [:]
            for try await (queue, counter, value) in rows.decode((String, String, Int64).self) {
                var entry = stats[queue] ?? .empty
                switch counter {
                case "processed": entry.processed = value
                case "failed": entry.failed = value
                case "processed_last_minute": entry.processedLastMinute = value
                case "failed_last_minute": entry.failedLastMinute = value
                case "processed_last_hour": entry.processedLastHour = value
                case "failed_last_hour": entry.failedLastHour = value
                case "latency_ms": entry.latencyMs = max(0, value)
                default: entry.counts[counter] = value
                }
                stats[queue] = entry
            }
            return stats
        }
    }
}
