import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Every query Gantry runs against its jobs, named after what it does. Bind parameters only: values never
/// become SQL text. Each query is one statement, so it commits on its own and holds row locks only briefly.
public struct JobStore: Sendable {
    /// The channel every broker LISTENs on; payload `<broker id> <queue> <count>`.
    public static let notifyChannel = "gantry_jobs"

    let storage: Storage
    let logger: Logger
    let brokerID: UUID

    public init(storage: Storage, brokerID: UUID, logger: Logger) {
        self.storage = storage
        self.brokerID = brokerID
        self.logger = logger
    }

    // MARK: enqueue

    /// What one new job needs, in the shape `json_to_record` reads (see `insertJobs`).
    struct NewJobRecord: Encodable {
        var type: String
        var args: JSONValue
        var queue: String
        var priority: Int
        var run_at: String?
        var delay_ms: Int64
        var max_attempts: Int
        var timeout_ms: Int64?
        var expires_at: String?
        var queue_timeout_ms: Int64?
        var unique_key: String?
        var unique_for_ms: Int64?
        var tags: [String]
        var meta: JSONValue

        init(_ params: Enqueue.Params) {
            type = params.type
            args = params.args
            queue = params.queue
            priority = params.priority
            run_at = params.runAt.map(GantryJSON.formatTimestamp)
            delay_ms = params.delayMs ?? 0
            max_attempts = params.maxAttempts
            timeout_ms = params.timeoutMs
            expires_at = params.expiresAt.map(GantryJSON.formatTimestamp)
            queue_timeout_ms = params.queueTimeoutMs
            unique_key = params.uniqueKey
            unique_for_ms = params.uniqueForMs
            tags = params.tags
            meta = params.meta
        }
    }

    /// Inserts the jobs in one statement (so a batch is all or nothing) and, in the same transaction, notifies
    /// every broker of the queues that gained available jobs. Returns ids and states in the order given. A job
    /// whose `unique_key` a waiting or running job already has, or a job completed within its `unique_for_ms`,
    /// is not inserted: its result is that job's, marked `duplicate` (the unique index and the holds decide, so
    /// concurrent producers on any broker create one job).
    public func insertJobs(_ jobs: [Enqueue.Params]) async throws -> [Enqueue.Result] {
        let logger = logger
        let inserted = try await storage.withConnection { connection in
            try await Self.committed(on: connection, logger: logger) { connection in try await insertRows(jobs, on: connection) }
        }
        // Rows come back in input order, minus those whose key was taken: match them up.
        var unkeyed = inserted.filter { $0.key == nil }.makeIterator()
        let insertedByKey = Dictionary(inserted.compactMap { row in row.key.map { ($0, row) } }, uniquingKeysWith: { first, _ in first })
        var results = [Enqueue.Result?](repeating: nil, count: jobs.count)
        var answered: Set<String> = []
        var taken: [Int] = []
        for (index, job) in jobs.enumerated() {
            guard let key = job.uniqueKey else {
                guard let row = unkeyed.next() else { throw InsertedRowMissing() }
                results[index] = Enqueue.Result(id: String(row.id), state: row.state)
                continue
            }
            if let row = insertedByKey[key] {
                // The first job with this key in the batch was stored; later ones in the batch are its duplicates.
                let first = answered.insert(key).inserted
                results[index] = Enqueue.Result(id: String(row.id), state: row.state, duplicate: first ? nil : true)
            } else {
                taken.append(index)
            }
        }
        if !taken.isEmpty {
            let holders = try await liveJobs(withUniqueKeys: taken.compactMap { jobs[$0].uniqueKey })
            var vanished: [Int] = []
            for index in taken {
                if let holder = holders[jobs[index].uniqueKey!] {
                    results[index] = Enqueue.Result(id: String(holder.id), state: holder.state, duplicate: true)
                } else {
                    vanished.append(index)
                }
            }
            // The job holding a key finished between the insert and the look-up: the key is free again.
            if !vanished.isEmpty {
                for (index, result) in zip(vanished, try await insertJobs(vanished.map { jobs[$0] })) { results[index] = result }
            }
        }
        return results.map { $0! }
    }

    /// The insert found fewer rows than it was given without a unique key to explain it: a bug, not bad input.
    struct InsertedRowMissing: Error {}

    struct InsertedRow {
        var id: Int64
        var state: JobState
        var key: String?
    }

    /// Inserts the jobs; the caller runs it inside a transaction (`insertJobs` its own, committed before anyone
    /// hears of the jobs; the cron enqueuer the one that also moves the schedule on). With unique keys it checks
    /// the holds once more after the insert: an ack that completed a key's job while this insert waited on its
    /// row commits its hold first.
    func insertRows(_ jobs: [Enqueue.Params], on connection: PostgresConnection) async throws -> [InsertedRow] {
        let inserted = try await insertStatement(jobs, on: connection)
        let keyed = inserted.filter { $0.key != nil }.map(\.id)
        guard !keyed.isEmpty else { return inserted }
        let rows = try await connection.query("""
            DELETE FROM gantry.jobs j USING gantry.unique_holds h
            WHERE j.id = ANY(\(keyed)::bigint[]) AND h.unique_key = j.unique_key AND h.held_until > now()
            RETURNING j.id
            """, logger: logger)
        var withdrawn: Set<Int64> = []
        for try await id in rows.decode(Int64.self) { withdrawn.insert(id) }
        return inserted.filter { !withdrawn.contains($0.id) }
    }

    /// Runs `body` in an explicit transaction and returns once its COMMIT has completed. A lone statement would
    /// not do for a write a client is told about: PostgresNIO reports a statement done at its CommandComplete,
    /// which PostgreSQL sends before the Sync that commits the statement's implicit transaction, so a server
    /// stopped in between rolled back jobs whose enqueue had already been answered (seen in the test that stops
    /// PostgreSQL under load: 2 acknowledged enqueues lost). COMMIT answers only after the commit.
    static func committed<Value: Sendable>(
        on connection: PostgresConnection, logger: Logger, _ body: (PostgresConnection) async throws -> sending Value
    ) async throws -> sending Value {
        try await connection.withTransaction(logger: logger, body)
    }

    private func insertStatement(_ jobs: [Enqueue.Params], on connection: PostgresConnection) async throws -> [InsertedRow] {
        let records = jobs.map(NewJobRecord.init)
        let payload = String(decoding: try GantryJSON.makeEncoder().encode(records), as: UTF8.self)
        let rows = try await connection.execute(InsertJobsStatement(jobs: payload, brokerID: brokerID), logger: logger)
        var inserted: [InsertedRow] = []
        inserted.reserveCapacity(jobs.count)
        for try await (id, state, key, _) in rows {
            inserted.append(InsertedRow(id: id, state: JobState(rawValue: state) ?? .available, key: key))
        }
        return inserted
    }

    /// The waiting or running jobs holding these unique keys, or the completed ones still holding them (a new
    /// statement, so it sees what a concurrent producer committed after our insert began).
    private func liveJobs(withUniqueKeys keys: [String]) async throws -> [String: InsertedRow] {
        return try await storage.withConnection { connection -> [String: InsertedRow] in
            let rows = try await connection.query("""
                SELECT id, state, unique_key FROM gantry.jobs WHERE unique_key = ANY(\(keys)::text[])
                UNION ALL
                SELECT job_id, 'completed', unique_key FROM gantry.unique_holds
                WHERE unique_key = ANY(\(keys)::text[]) AND held_until > now()
                """, logger: logger)
            var holders: [String: InsertedRow] = [:]
            for try await (id, state, key) in rows.decode((Int64, String, String).self) {
                holders[key] = InsertedRow(id: id, state: JobState(rawValue: state) ?? .available, key: key)
            }
            return holders
        }
    }

    // MARK: ack, nack, extend

    /// Columns that move unchanged from `jobs` to `finished_jobs`.
    static let movedColumns =
        "id, queue, type, args, priority, run_at, attempt, max_attempts, timeout_ms, expires_at, unique_key, tags, meta, enqueued_at, reserved_at, cancel_requested_at"

    /// One ack: the job, the session that says it holds it, and the result to keep.
    public struct Completion: Sendable, Encodable {
        var id: Int64
        var session_id: UUID
        var result: JSONValue?

        public init(id: Int64, sessionID: UUID, result: JSONValue?) {
            self.id = id
            self.session_id = sessionID
            self.result = result
        }
    }

    /// What an ack found: whether the session held the job (it is now completed), and whether an operator had
    /// asked to cancel it meanwhile (it still ran to the end, so it counts as completed).
    public struct Completed: Sendable, Equatable {
        public var held: Bool
        public var cancelRequested: Bool
    }

    /// Marks jobs completed whose lease their session holds, in one statement (acks from many connections
    /// share a commit); answers in the order given.
    public func completeJobs(_ completions: [Completion]) async throws -> [Completed] {
        let payload = String(decoding: try GantryJSON.makeEncoder().encode(completions), as: UTF8.self)
        let logger = logger
        return try await storage.withConnection { connection -> [Completed] in
            try await Self.committed(on: connection, logger: logger) { connection in
                let rows = try await connection.execute(CompleteJobsStatement(completions: payload), logger: logger)
                var found: [Int64: Bool] = [:]
                for try await (id, cancelRequested) in rows { found[id] = cancelRequested }
                return completions.map { Completed(held: found[$0.id] != nil, cancelRequested: found[$0.id] ?? false) }
            }
        }
    }

    /// How a failed attempt ends, decided by the broker's retry rules before the store records it.
    public enum FailureOutcome: Sendable {
        case retry(afterMs: Int64)
        case dead
    }

    /// How a failed attempt was recorded: nil when the session does not hold the job.
    public enum RecordedFailure: Sendable, Equatable {
        case retry(queue: String, nextRunAt: Date)
        /// Dead, or cancelled when an operator asked to cancel it while it ran.
        case finished(JobState)
    }

    /// Records a failed attempt of a job `sessionID` holds: appends the error and either schedules the retry or
    /// moves the job to the dead set (to `cancelled` instead, never retried, when an operator asked to cancel it).
    public func failJob(id: Int64, sessionID: UUID, error: JSONValue, outcome: FailureOutcome) async throws -> RecordedFailure? {
        return try await storage.withConnection { connection -> RecordedFailure? in
            if case .retry(let delayMs) = outcome {
                let rows = try await connection.query("""
                    WITH failed AS (
                        UPDATE gantry.jobs
                        SET state = CASE WHEN \(delayMs) = 0 THEN 'available' ELSE 'scheduled' END,
                            run_at = now() + \(delayMs) * interval '1 millisecond',
                            errors = errors || jsonb_build_array(\(error)::jsonb || jsonb_build_object('attempt', attempt)),
                            session_id = NULL, broker_id = NULL, lease_expires_at = NULL
                        WHERE id = \(id) AND state = 'reserved' AND session_id = \(sessionID) AND cancel_requested_at IS NULL
                        RETURNING queue, run_at
                    ), counted AS (
                        \(unescaped: Self.countFailures("failed"))
                    )
                    SELECT queue, run_at FROM failed
                    """, logger: logger)
                for try await (queue, runAt) in rows.decode((String, Date).self) { return .retry(queue: queue, nextRunAt: runAt) }
                // Not held, or its cancellation was asked for: the final move below tells which.
            }
            let rows = try await connection.query("""
                WITH failed AS (
                    DELETE FROM gantry.jobs WHERE id = \(id) AND state = 'reserved' AND session_id = \(sessionID)
                    RETURNING *
                ), moved AS (
                    INSERT INTO gantry.finished_jobs (\(unescaped: Self.movedColumns), errors, state)
                    SELECT \(unescaped: Self.movedColumns),
                           errors || jsonb_build_array(\(error)::jsonb || jsonb_build_object('attempt', attempt)),
                           CASE WHEN cancel_requested_at IS NULL THEN 'dead' ELSE 'cancelled' END
                    FROM failed
                    RETURNING queue, state
                ), counted AS (
                    \(unescaped: Self.countFailures("moved"))
                )
                SELECT state FROM moved
                """, logger: logger)
            for try await state in rows.decode(String.self) { return .finished(JobState(rawValue: state) ?? .dead) }
            return nil
        }
    }

    /// The counter upsert for failed attempts of the rows in CTE `source`: each is processed and failed.
    private static func countFailures(_ source: String) -> String {
        """
        INSERT INTO gantry.queue_counters AS c (queue, counter, slot, value)
        SELECT f.queue, k.counter, pg_backend_pid() % 64, count(*)
        FROM \(source) f CROSS JOIN (VALUES ('failed'), ('processed')) AS k(counter)
        GROUP BY f.queue, k.counter ORDER BY f.queue, k.counter
        ON CONFLICT (queue, counter, slot) DO UPDATE SET value = c.value + excluded.value
        """
    }

    /// Pushes out the leases `sessionID` holds among `ids`; the others are not touched.
    public func extendLeases(ids: [Int64], sessionID: UUID, leaseMs: Int64?, defaultLeaseMs: Int64) async throws -> [Extend.Lease] {
        return try await storage.withConnection { connection -> [Extend.Lease] in
            let rows = try await connection.query("""
                UPDATE gantry.jobs
                SET lease_expires_at = now() + coalesce(\(leaseMs), timeout_ms, \(defaultLeaseMs)) * interval '1 millisecond'
                WHERE id = ANY(\(ids)::bigint[]) AND state = 'reserved' AND session_id = \(sessionID)
                RETURNING id, lease_expires_at, cancel_requested_at IS NOT NULL
                """, logger: logger)
            var leases: [Extend.Lease] = []
            for try await (id, expiresAt, cancelRequested) in rows.decode((Int64, Date, Bool).self) {
                leases.append(Extend.Lease(id: String(id), leaseExpiresAt: expiresAt, cancelRequested: cancelRequested ? true : nil))
            }
            return leases
        }
    }

    // MARK: putting jobs back

    /// Puts back every job leased to the session (its connection closed), recording why. Jobs with attempts
    /// left become available at once; the others are dead. Returns the queues that gained available jobs.
    public func releaseSessionJobs(sessionID: UUID, workerID: String?, message: String) async throws -> [String: Int] {
        let logger = logger
        return try await storage.withConnection { connection in
            try await Self.putBack(on: connection, logger: logger, """
            WITH lost AS (
                SELECT j.id, j.attempt >= j.max_attempts OR j.cancel_requested_at IS NOT NULL AS exhausted,
                       jsonb_strip_nulls(jsonb_build_object(
                           'attempt', j.attempt, 'message', \(message)::text, 'reason', 'connection_closed',
                           'at', \(unescaped: Self.nowText), 'session_id', j.session_id, 'worker', \(workerID)::text)) AS error
                FROM gantry.jobs j WHERE j.session_id = \(sessionID) AND j.state = 'reserved'
                FOR UPDATE
            )
            \(unescaped: Self.putBackRest)
            """)
        }
    }

    /// Arbitrary but fixed: the advisory lock that lets one broker at a time reap.
    static let reaperLockKey: Int64 = 0x6761_6E74_7273

    /// Puts back, as `releaseSessionJobs` does, jobs whose lease ran out and jobs held through a broker that
    /// stopped heartbeating (it died with its sessions), as of `now`. Only one broker reaps at a time: the others
    /// find the advisory lock taken and return nil. The lock is a transaction's, so a pooler cannot strand it.
    public func reapLostLeases(brokerTimeoutMs: Int64, now: Date?, limit: Int) async throws -> [String: Int]? {
        let logger = logger
        return try await storage.withConnection { connection -> [String: Int]? in
            try await connection.withTransaction(logger: logger) { transaction -> [String: Int]? in
                let lock = try await transaction.query("SELECT pg_try_advisory_xact_lock(\(Self.reaperLockKey))", logger: logger)
                guard try await lock.decode(Bool.self).first(where: { _ in true }) == true else { return nil }
                return try await Self.putBack(on: transaction, logger: logger, """
                    WITH lost AS (
                        SELECT j.id, j.attempt >= j.max_attempts OR j.cancel_requested_at IS NOT NULL AS exhausted,
                               jsonb_build_object(
                                   'attempt', j.attempt, 'at', coalesce(\(now.map(GantryJSON.formatTimestamp))::text, \(unescaped: Self.nowText)), 'session_id', j.session_id,
                                   'reason', CASE WHEN j.lease_expires_at < coalesce(\(now)::timestamptz, now()) THEN 'lease_expired' ELSE 'broker_lost' END,
                                   'message', CASE WHEN j.lease_expires_at < coalesce(\(now)::timestamptz, now())
                                       THEN 'The lease ran out before the worker acked, nacked or extended it.'
                                       ELSE 'The broker holding the worker''s connection stopped heartbeating.' END) AS error
                        FROM gantry.jobs j
                        WHERE j.state = 'reserved' AND (
                            j.lease_expires_at < coalesce(\(now)::timestamptz, now())
                            OR NOT EXISTS (
                                SELECT 1 FROM gantry.brokers b
                                WHERE b.id = j.broker_id AND b.heartbeat_at > coalesce(\(now)::timestamptz, now()) - \(brokerTimeoutMs) * interval '1 millisecond'))
                        ORDER BY j.lease_expires_at LIMIT \(limit)
                        FOR UPDATE SKIP LOCKED
                    )
                    \(unescaped: Self.putBackRest)
                    """)
            }
        }
    }

    /// After a `lost` CTE (id, exhausted, error): retry or bury each job (as `cancelled` when an operator asked
    /// to cancel it), count the failures, and report the queues that gained available jobs.
    private static let putBackRest = """
        , back AS (
            UPDATE gantry.jobs j
            SET state = 'available', errors = j.errors || jsonb_build_array(lost.error), run_at = now(),
                session_id = NULL, broker_id = NULL, lease_expires_at = NULL
            FROM lost WHERE j.id = lost.id AND NOT lost.exhausted
            RETURNING j.queue
        ), gone AS (
            DELETE FROM gantry.jobs j USING lost WHERE j.id = lost.id AND lost.exhausted
            RETURNING j.*, lost.error
        ), dead AS (
            INSERT INTO gantry.finished_jobs (\(movedColumns), errors, state)
            SELECT \(movedColumns), errors || jsonb_build_array(error),
                   CASE WHEN cancel_requested_at IS NULL THEN 'dead' ELSE 'cancelled' END FROM gone
            RETURNING queue
        ), failed AS (
            SELECT queue FROM back UNION ALL SELECT queue FROM dead
        ), counted AS (
            \(countFailures("failed"))
        )
        SELECT queue, count(*) FROM back GROUP BY queue
        """

    private static func putBack(on connection: PostgresConnection, logger: Logger, _ query: PostgresQuery) async throws -> [String: Int] {
        let rows = try await connection.query(query, logger: logger)
        var available: [String: Int] = [:]
        for try await (queue, count) in rows.decode((String, Int64).self) { available[queue] = Int(count) }
        return available
    }

    /// `now()` as the RFC 3339 text the wire uses, for timestamps stored inside jsonb.
    static let nowText = #"to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#

    // MARK: time-driven changes

    /// Makes scheduled jobs whose time has come by `now` available. Returns the queues that gained jobs and how
    /// long until the next scheduled job is due (nil when none is).
    public func promoteDueJobs(now: Date?, limit: Int) async throws -> (available: [String: Int], nextDueInMs: Int64?) {
        return try await storage.withConnection { connection -> (available: [String: Int], nextDueInMs: Int64?) in
            let rows = try await connection.query("""
                WITH due AS (
                    SELECT id FROM gantry.jobs WHERE state = 'scheduled' AND run_at <= coalesce(\(now)::timestamptz, now())
                    ORDER BY run_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                ), promoted AS (
                    UPDATE gantry.jobs j SET state = 'available' FROM due WHERE j.id = due.id RETURNING j.queue
                )
                SELECT queue, count(*)::int8 FROM promoted GROUP BY queue
                UNION ALL
                SELECT NULL, (extract(epoch FROM min(run_at) - coalesce(\(now)::timestamptz, now())) * 1000)::int8 FROM gantry.jobs
                WHERE state = 'scheduled' AND run_at > coalesce(\(now)::timestamptz, now())
                """, logger: logger)
            var available: [String: Int] = [:]
            var nextDue: Int64?
            for try await (queue, value) in rows.decode((String?, Int64?).self) {
                if let queue, let value { available[queue] = Int(value) } else if queue == nil { nextDue = value }
            }
            return (available, nextDue)
        }
    }

    /// Jobs still waiting when their queue timeout has passed by `now` become `expired` and are never handed
    /// out. Returns how many expired, by queue.
    public func expireStaleJobs(now: Date?, limit: Int) async throws -> [String: Int] {
        return try await storage.withConnection { connection -> [String: Int] in
            let rows = try await connection.query("""
                WITH stale AS (
                    SELECT id FROM gantry.jobs
                    WHERE expires_at IS NOT NULL AND expires_at <= coalesce(\(now)::timestamptz, now()) AND state <> 'reserved'
                    ORDER BY expires_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                ), gone AS (
                    DELETE FROM gantry.jobs j USING stale WHERE j.id = stale.id RETURNING j.*
                ), moved AS (
                    INSERT INTO gantry.finished_jobs (\(unescaped: Self.movedColumns), errors, state)
                    SELECT \(unescaped: Self.movedColumns), errors, 'expired' FROM gone
                    RETURNING queue
                )
                SELECT queue, count(*) FROM moved GROUP BY queue
                """, logger: logger)
            var expired: [String: Int] = [:]
            for try await (queue, count) in rows.decode((String, Int64).self) { expired[queue] = Int(count) }
            return expired
        }
    }

    /// Tells every broker (this one too) that jobs became available.
    public func notifyAvailable(_ counts: [String: Int]) async throws {
        guard !counts.isEmpty else { return }
        try await storage.withConnection { connection -> Void in
            let queues = Array(counts.keys)
            let numbers = queues.map { Int64(counts[$0]!) }
            try await connection.query("""
                SELECT pg_notify(\(Self.notifyChannel), \(brokerID.wireString) || ' ' || q || ' ' || n)
                FROM unnest(\(queues)::text[], \(numbers)::int8[]) AS t(q, n)
                """, logger: logger)
        }
    }

    /// How many jobs (up to `cap`) are available in each of the queues: the safety net for lost notifications.
    public func availableCounts(queues: [String], cap: Int = 100) async throws -> [String: Int] {
        return try await storage.withConnection { connection -> [String: Int] in
            let rows = try await connection.query("""
                SELECT q, (SELECT count(*) FROM (SELECT 1 FROM gantry.jobs
                           WHERE queue = q AND state = 'available' LIMIT \(cap)) AS capped)
                FROM unnest(\(queues)::text[]) AS q
                """, logger: logger)
            var counts: [String: Int] = [:]
            for try await (queue, count) in rows.decode((String, Int64).self) where count > 0 { counts[queue] = Int(count) }
            return counts
        }
    }

    // MARK: reading

    /// The whole job, live or finished; nil when there is none with that id.
    public func job(id: Int64) async throws -> Job? {
        let logger = logger
        return try await storage.withConnection { connection -> Job? in
            for try await job in try await connection.execute(JobByIDStatement(id: id), logger: logger) { return job }
            return nil
        }
    }

    /// What `jobs.list` filters on; nil means any.
    public struct JobFilter: Sendable {
        public var queue: String?
        public var state: JobState?
        public var type: String?
        public var tag: String?
        /// Only jobs with a smaller id (older): the cursor of the previous page.
        public var beforeID: Int64?

        public init(queue: String? = nil, state: JobState? = nil, type: String? = nil, tag: String? = nil, beforeID: Int64? = nil) {
            self.queue = queue
            self.state = state
            self.type = type
            self.tag = tag
            self.beforeID = beforeID
        }
    }

    /// Jobs newest first, live and finished, paged by id (a keyset cursor, so deep pages cost no more than the
    /// first). PostgreSQL pushes the filters into both tables and merges their primary-key scans.
    public func listJobs(_ filter: JobFilter, limit: Int) async throws -> [Job] {
        let logger = logger
        var bindings = PostgresBindings()
        var conditions: [String] = []
        // Only the filters given become conditions (each value a bind), so the plan can use the indexes they need.
        func condition(_ sql: (String) -> String, _ value: some PostgresDynamicTypeEncodable) {
            bindings.append(value)
            conditions.append(sql("$\(bindings.count)"))
        }
        if let state = filter.state { condition({ "state = \($0)::text" }, state.rawValue) }
        if let queue = filter.queue { condition({ "queue = \($0)::text" }, queue) }
        if let type = filter.type { condition({ "type = \($0)::text" }, type) }
        if let tag = filter.tag { condition({ "\($0)::text = ANY(tags)" }, tag) }
        if let beforeID = filter.beforeID { condition({ "id < \($0)::bigint" }, beforeID) }
        bindings.append(limit)
        let sql = """
            SELECT * FROM (
                SELECT \(Self.liveJobColumns) FROM gantry.jobs
                UNION ALL
                SELECT \(Self.finishedJobColumns) FROM gantry.finished_jobs
            ) AS every_job
            \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
            ORDER BY id DESC LIMIT $\(bindings.count)::bigint
            """
        let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
        return try await storage.withConnection { connection -> [Job] in
            var jobs: [Job] = []
            for try await row in try await connection.query(query, logger: logger) { jobs.append(try Self.decodeJob(row)) }
            return jobs
        }
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

    /// Final states an operator may bring a job back from.
    public static let retryableStates: [JobState] = [.dead, .expired, .cancelled]

    /// Moves a dead, expired or cancelled job back to `available`, keeping its errors; a job out of attempts
    /// gets one more, and a queue timeout that already passed no longer applies. Returns its queue, or nil
    /// when no such job is in a retryable state.
    public func retryJob(id: Int64) async throws -> String? {
        let states = Self.retryableStates.map(\.rawValue)
        return try await storage.withConnection { connection -> String? in
            let rows = try await connection.query("""
                WITH revived AS (
                    DELETE FROM gantry.finished_jobs f WHERE id = \(id) AND state = ANY(\(states)::text[])
                      AND NOT EXISTS (SELECT 1 FROM gantry.jobs live WHERE live.unique_key = f.unique_key)
                      AND NOT EXISTS (SELECT 1 FROM gantry.unique_holds h
                                      WHERE h.unique_key = f.unique_key AND h.held_until > now() AND h.job_id <> f.id)
                    RETURNING *
                )
                INSERT INTO gantry.jobs (id, queue, type, args, state, priority, run_at, attempt, max_attempts, timeout_ms,
                                         expires_at, unique_key, tags, meta, errors, enqueued_at)
                OVERRIDING SYSTEM VALUE
                SELECT id, queue, type, args, 'available', priority, now(), attempt, greatest(max_attempts, attempt + 1),
                       timeout_ms, NULL, unique_key, tags, meta, errors, enqueued_at
                FROM revived
                RETURNING queue
                """, logger: logger)
            for try await queue in rows.decode(String.self) { return queue }
            return nil
        }
    }

    /// The waiting or running job that holds the unique key of finished job `id`, or the completed one still
    /// holding it for its `unique_for_ms`, if any (it keeps `id` from being retried meanwhile).
    public func uniqueKeyHolder(forFinishedJob id: Int64) async throws -> Int64? {
        return try await storage.withConnection { connection -> Int64? in
            let rows = try await connection.query("""
                SELECT live.id FROM gantry.finished_jobs f JOIN gantry.jobs live ON live.unique_key = f.unique_key
                WHERE f.id = \(id)
                UNION ALL
                SELECT h.job_id FROM gantry.finished_jobs f JOIN gantry.unique_holds h ON h.unique_key = f.unique_key
                WHERE f.id = \(id) AND h.held_until > now() AND h.job_id <> f.id
                """, logger: logger)
            for try await holder in rows.decode(Int64.self) { return holder }
            return nil
        }
    }

    /// Arbitrary but fixed: the advisory lock that lets one broker at a time prune finished jobs.
    static let cleanerLockKey: Int64 = 0x6761_6E74_7263

    /// Deletes up to `batch` finished jobs in `states` (of `queue`, if given) that finished more than
    /// `olderThanMs` ago, oldest first, in one short statement. The background cleaner passes `exclusive`, so
    /// only the broker holding the cleaner lock deletes and the others delete nothing; an operator's cleanup
    /// does not wait for the lock. Returns how many were deleted.
    public func pruneFinishedJobs(states: [JobState], olderThanMs: Int64, queue: String? = nil, batch: Int = 1000,
                                  exclusive: Bool = true, now: Date? = nil) async throws -> Int {
        let logger = logger
        let names = states.map(\.rawValue)
        return try await storage.withConnection { connection -> Int in
            let rows = try await connection.query("""
                WITH lead AS (
                    SELECT CASE WHEN \(exclusive) THEN pg_try_advisory_xact_lock(\(Self.cleanerLockKey)) ELSE true END AS held
                ), doomed AS (
                    SELECT id FROM gantry.finished_jobs
                    WHERE (SELECT held FROM lead) AND state = ANY(\(names)::text[])
                      AND finished_at < coalesce(\(now)::timestamptz, now()) - \(olderThanMs) * interval '1 millisecond'
                      AND (\(queue)::text IS NULL OR queue = \(queue))
                    ORDER BY finished_at LIMIT \(batch)
                    FOR UPDATE SKIP LOCKED
                ), deleted AS (
                    DELETE FROM gantry.finished_jobs f USING doomed WHERE f.id = doomed.id RETURNING 1
                )
                SELECT count(*) FROM deleted
                """, logger: logger)
            return Int(try await rows.decode(Int64.self).first(where: { _ in true }) ?? 0)
        }
    }

    /// Forgets per-minute activity older than the longest window `stats` reports (an hour, with a margin), unique
    /// keys whose window after completion ended, and job starts older than their queue's rate window, as of `now`.
    public func pruneActivity(now: Date?) async throws {
        let logger = logger
        try await storage.withConnection { connection in
            try await connection.query("DELETE FROM gantry.queue_activity WHERE minute < coalesce(\(now)::timestamptz, now()) - interval '2 hours'", logger: logger)
            try await connection.query("DELETE FROM gantry.unique_holds WHERE held_until < coalesce(\(now)::timestamptz, now())", logger: logger)
            // Starts older than their queue's rate window count for nothing (all of them, once a queue has no limit).
            try await connection.query("""
                DELETE FROM gantry.queue_starts s
                WHERE s.started_at < coalesce(\(now)::timestamptz, now()) - coalesce(
                    (SELECT l.rate_period_ms FROM gantry.queue_limits l WHERE l.queue = s.queue), 0) * interval '1 millisecond'
                """, logger: logger)
            return ()
        }
    }

    /// Moves a waiting (scheduled or available) job to `cancelled`; a reserved one is flagged instead, so its
    /// worker hears of it and it is never retried. Returns the job's state afterwards (`cancelled` or
    /// `reserved`), or nil when it is in neither case.
    public func cancelJob(id: Int64) async throws -> JobState? {
        let logger = logger
        return try await storage.withConnection { connection -> JobState? in
            let rows = try await connection.query("""
                WITH gone AS (
                    DELETE FROM gantry.jobs WHERE id = \(id) AND state IN ('scheduled', 'available') RETURNING *
                ), moved AS (
                    INSERT INTO gantry.finished_jobs (\(unescaped: Self.movedColumns), errors, state)
                    SELECT \(unescaped: Self.movedColumns), errors, 'cancelled' FROM gone
                    RETURNING state
                ), flagged AS (
                    UPDATE gantry.jobs SET cancel_requested_at = coalesce(cancel_requested_at, now())
                    WHERE id = \(id) AND state = 'reserved'
                    RETURNING state
                )
                SELECT state FROM moved UNION ALL SELECT state FROM flagged
                """, logger: logger)
            for try await state in rows.decode(String.self) { return JobState(rawValue: state) }
            return nil
        }
    }

    /// Deletes a waiting or finished job for good. Returns false when there is none such (or a worker holds it).
    public func discardJob(id: Int64) async throws -> Bool {
        let logger = logger
        return try await storage.withConnection { connection -> Bool in
            let rows = try await connection.query("""
                WITH live AS (
                    DELETE FROM gantry.jobs WHERE id = \(id) AND state IN ('scheduled', 'available') RETURNING id
                ), finished AS (
                    DELETE FROM gantry.finished_jobs WHERE id = \(id) RETURNING id
                )
                SELECT count(*) FROM (SELECT id FROM live UNION ALL SELECT id FROM finished) AS deleted
                """, logger: logger)
            return try await rows.decode(Int64.self).first(where: { _ in true }) == 1
        }
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
