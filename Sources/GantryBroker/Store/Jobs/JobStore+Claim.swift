import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Reserving jobs: one statement for queues without limits; for limited queues a short transaction that takes
/// the queues' limit rows first, so concurrent claims on any broker take turns and each counts the others'.
extension JobStore {
    public struct Claim: Sendable {
        public var jobs: [ReservedJob]
        /// A rate limit held jobs back: when its window lets the next one start.
        public var rateLimitedUntil: ContinuousClock.Instant?
    }

    /// Leases up to `max` available jobs, taking the queues in the order given (paused ones skipped) and,
    /// within a queue, by priority, then run_at, then enqueue order. `SKIP LOCKED` lets concurrent claims pass
    /// each other without ever handing one job to two sessions. `limited` names the queues this broker knows to
    /// have limits; a queue that got limits it has not heard of yet is skipped rather than claimed unchecked
    /// (see `claimJobsTogether`).
    public func claimJobs(queues: [String], max: Int, sessionID: UUID, leaseMs: Int64?, defaultLeaseMs: Int64,
                          limited: Set<String> = []) async throws -> Claim {
        let request = ClaimRequest(sessionID: sessionID, max: max, leaseMs: leaseMs)
        let limitedQueues = queues.filter(limited.contains)
        guard !limitedQueues.isEmpty else {
            return Claim(jobs: try await claimJobsTogether(queues: queues, requests: [request], defaultLeaseMs: defaultLeaseMs)[0])
        }
        let logger = logger
        return try await storage.withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query("""
                    SELECT queue FROM gantry.queue_limits WHERE queue = ANY(\(limitedQueues)::text[]) ORDER BY queue FOR UPDATE
                    """, logger: logger)
                // A new statement after the lock: it sees every claim committed by whoever held it before us.
                let room = try await roomUnderLimits(queues: limitedQueues, on: connection)
                let limits = LimitsInForce(
                    allowances: queues.map { room[$0]?.allowance ?? -1 }, rateLimited: queues.filter { room[$0]?.rateLimited == true })
                let jobs = try await claimStatement(
                    queues: queues, requests: [request], defaultLeaseMs: defaultLeaseMs, limits: limits, on: connection)[0]
                let waits = room.values.compactMap { $0.allowance == 0 ? $0.nextStartInMs : nil }
                let until = jobs.isEmpty ? waits.min().map { ContinuousClock.now + .milliseconds(Swift.max(1, $0)) } : nil
                return Claim(jobs: jobs, rateLimitedUntil: until)
            }
        }
    }

    struct Room {
        /// How many more jobs may start now (never below 0).
        var allowance: Int
        var rateLimited: Bool
        /// When the rate limit's window lets one more start, if it is full.
        var nextStartInMs: Int64?
    }

    /// Free concurrency slots (reserved jobs counted from the counters) and free starts in the rate window.
    private func roomUnderLimits(queues: [String], on connection: PostgresConnection) async throws -> [String: Room] {
        let rows = try await connection.query("""
            WITH recent AS (
                SELECT l.queue, l.concurrency, l.rate_limit,
                       (SELECT sum(c.value) FROM gantry.queue_counters c
                        WHERE c.queue = l.queue AND c.counter = 'reserved')::bigint AS reserved,
                       (SELECT count(*) FROM gantry.queue_starts s
                        WHERE s.queue = l.queue AND s.started_at > clock_timestamp() - l.rate_period_ms * interval '1 millisecond') AS starts,
                       (SELECT min(s.started_at) + l.rate_period_ms * interval '1 millisecond' FROM gantry.queue_starts s
                        WHERE s.queue = l.queue AND s.started_at > clock_timestamp() - l.rate_period_ms * interval '1 millisecond') AS window_frees_at
                FROM gantry.queue_limits l WHERE l.queue = ANY(\(queues)::text[])
            )
            SELECT queue, (concurrency - coalesce(reserved, 0))::bigint, (rate_limit - starts)::bigint,
                   ceil(extract(epoch FROM window_frees_at - clock_timestamp()) * 1000)::bigint
            FROM recent
            """, logger: logger)
        var room: [String: Room] = [:]
        for try await (queue, freeSlots, freeStarts, windowFreesInMs) in rows.decode((String, Int64?, Int64?, Int64?).self) {
            let allowance = [freeSlots, freeStarts].compactMap { $0 }.min().map { Int(Swift.max(0, $0)) } ?? -1
            room[queue] = Room(
                allowance: allowance, rateLimited: freeStarts != nil,
                nextStartInMs: (freeStarts ?? 1) <= 0 ? windowFreesInMs : nil)
        }
        return room
    }
}

/// Reserves from many connections at once, on the same queues: one claim statement (and one commit) whose rows
/// are dealt out round-robin, so each waiting reserve gets its first job before any gets a second.
extension JobStore {
    /// One waiting reserve: whose, how many, and for how long.
    public struct ClaimRequest: Sendable {
        public var sessionID: UUID
        public var max: Int
        public var leaseMs: Int64?

        public init(sessionID: UUID, max: Int, leaseMs: Int64?) {
            self.sessionID = sessionID
            self.max = max
            self.leaseMs = leaseMs
        }
    }

    private struct ClaimSlot: DirectJSONWritable {
        var request: Int
        var session_id: UUID
        var lease_ms: Int64?
        var max: Int

        func writeJSON(into object: inout JSONObjectWriter) throws(JSONWriteError) {
            object.integer("request", request)
            object.string("session_id", session_id.wireString)
            object.integer("lease_ms", lease_ms)
            object.integer("max", max)
        }
    }

    /// Claims for every request on queues without limits (a queue with limits is skipped: its claims go through
    /// `claimJobs`, which takes the limit's lock); answers each request's jobs in the order given.
    public func claimJobsTogether(queues: [String], requests: [ClaimRequest], defaultLeaseMs: Int64) async throws -> [[ReservedJob]] {
        let statement = try makeClaimStatement(queues: queues, requests: requests, defaultLeaseMs: defaultLeaseMs, limits: nil)
        let rows = try await storage.pipelines.execute(ClaimStatement.pipelined, statement.pipelineParameters)
        var claimed: [ClaimedRow] = []
        claimed.reserveCapacity(rows.count)
        for row in 0..<rows.count {
            let job = ReservedJob(
                id: String(try rows.int64(row, 0)), type: rows.string(row, 1), args: try rows.json(row, 2), queue: rows.string(row, 3),
                priority: Int(try rows.int16(row, 4)), attempt: Int(try rows.int32(row, 5)), maxAttempts: Int(try rows.int32(row, 6)),
                enqueuedAt: try rows.date(row, 7), leaseExpiresAt: try rows.date(row, 8), meta: try rows.json(row, 9))
            claimed.append(ClaimedRow(request: Int(try rows.int32(row, 10)), slot: try rows.int64(row, 11), job: job,
                                      stepID: try rows.optionalInt64(row, 12)))
        }
        let (storage, logger) = (storage, logger)
        return try await deal(claimed, among: requests.count) { stepIDs in
            try await storage.withConnection { try await OperationStore.stepContexts(stepIDs, on: $0, logger: logger) }
        }
    }

    /// What the limits of the queues in a claim allow, worked out under their lock.
    struct LimitsInForce {
        /// Per queue, in the claim's order: how many more jobs may start (-1: no cap).
        var allowances: [Int]
        /// Queues whose starts are logged for their rate limit.
        var rateLimited: [String]
    }

    /// The claim statement. Without `limits`, queues that have limits are skipped; with them, each queue is capped
    /// at its allowance and starts on rate-limited queues are logged.
    func claimStatement(queues: [String], requests: [ClaimRequest], defaultLeaseMs: Int64, limits: LimitsInForce?,
                        on connection: PostgresConnection) async throws -> [[ReservedJob]] {
        let statement = try makeClaimStatement(queues: queues, requests: requests, defaultLeaseMs: defaultLeaseMs, limits: limits)
        let rows = try await connection.execute(statement, logger: logger)
        var claimed: [ClaimedRow] = []
        for try await row in rows {
            let job = ReservedJob(
                id: String(row.0), type: row.1, args: row.2, queue: row.3, priority: Int(row.4), attempt: Int(row.5),
                maxAttempts: Int(row.6), enqueuedAt: row.7, leaseExpiresAt: row.8, meta: row.9)
            claimed.append(ClaimedRow(request: Int(row.10), slot: row.11, job: job, stepID: row.12))
        }
        let logger = logger
        return try await deal(claimed, among: requests.count) { stepIDs in
            try await OperationStore.stepContexts(stepIDs, on: connection, logger: logger)
        }
    }

    private func makeClaimStatement(queues: [String], requests: [ClaimRequest], defaultLeaseMs: Int64, limits: LimitsInForce?) throws -> ClaimStatement {
        let slots = requests.enumerated().map { ClaimSlot(request: $0.offset, session_id: $0.element.sessionID, lease_ms: $0.element.leaseMs, max: $0.element.max) }
        return ClaimStatement(
            slots: String(decoding: try JSONObjectWriter.array(slots), as: UTF8.self), queues: queues,
            allowances: limits?.allowances ?? queues.map { _ in -1 }, limitsApplied: limits != nil,
            total: requests.reduce(0) { $0 + $1.max }, brokerID: brokerID, defaultLeaseMs: defaultLeaseMs,
            rateLimited: limits?.rateLimited ?? [])
    }

    struct ClaimedRow {
        var request: Int
        var slot: Int64
        var job: ReservedJob
        var stepID: Int64?
    }

    /// Gives steps their operation's context, then each request its jobs in the order they were picked.
    private func deal(_ claimed: [ClaimedRow], among requestCount: Int,
                      stepContexts: ([Int64]) async throws -> [Int64: (StepContext, PackageContext?)]) async throws -> [[ReservedJob]] {
        var claimed = claimed
        let stepIDs = claimed.compactMap(\.stepID)
        if !stepIDs.isEmpty {
            let contexts = try await stepContexts(stepIDs)
            for index in claimed.indices {
                guard let stepID = claimed[index].stepID, let (step, package) = contexts[stepID] else { continue }
                claimed[index].job.operation = step
                claimed[index].job.package = package
            }
        }
        var answers = [[ReservedJob]](repeating: [], count: requestCount)
        // Slots were numbered in pick order: each request's jobs come back in the order they were picked.
        for entry in claimed.sorted(by: { $0.slot < $1.slot }) { answers[entry.request].append(entry.job) }
        return answers
    }
}

/// The claim, prepared once per connection: it runs on every reserve, and PostgreSQL then skips parsing it.
struct ClaimStatement: PostgresPreparedStatement {
    typealias Row = (Int64, String, JSONValue, String, Int16, Int32, Int32, Date, Date, JSONValue, Int32, Int64, Int64?)

    /// The waiting reserves as `[{request, session_id, lease_ms, max}]`.
    var slots: String
    var queues: [String]
    /// Per queue, how many more jobs may start (-1: no cap).
    var allowances: [Int]
    /// Without limits, queues that have limits are skipped.
    var limitsApplied: Bool
    var total: Int
    var brokerID: UUID
    var defaultLeaseMs: Int64
    /// Queues whose starts are logged for their rate limit.
    var rateLimited: [String]

    static let name = "gantry_claim_v2"
    static let sql = """
        WITH wanted AS (
            SELECT r.request, r.session_id, r.lease_ms, n
            FROM jsonb_to_recordset($1::jsonb) AS r(request int, session_id uuid, lease_ms bigint, max int)
            CROSS JOIN LATERAL generate_series(1, r.max) AS n
        ), slots AS (
            SELECT request, session_id, lease_ms, row_number() OVER (ORDER BY n, request) AS slot FROM wanted
        ), candidates AS (
            SELECT picked.id, picked.priority, picked.run_at, q.position
            FROM (
                SELECT name, position, nullif(allowance, -1) AS allowance
                FROM unnest($2::text[], $3::bigint[]) WITH ORDINALITY AS given(name, allowance, position)
                WHERE NOT EXISTS (SELECT 1 FROM gantry.paused_queues p WHERE p.queue = given.name)
                  AND ($4::boolean OR NOT EXISTS (SELECT 1 FROM gantry.queue_limits l WHERE l.queue = given.name))
            ) AS q
            CROSS JOIN LATERAL (
                SELECT j.id, j.priority, j.run_at FROM gantry.jobs j
                WHERE j.queue = q.name AND j.state = 'available'
                  AND (j.expires_at IS NULL OR j.expires_at > now())
                ORDER BY j.priority, j.run_at, j.id
                LIMIT least($5::bigint, coalesce(q.allowance, $5::bigint))
                FOR UPDATE SKIP LOCKED
            ) picked
            ORDER BY q.position, picked.priority, picked.run_at, picked.id
            LIMIT $5::bigint
        ), numbered AS (
            SELECT id, position, priority, run_at, row_number() OVER (ORDER BY position, priority, run_at, id) AS slot
            FROM candidates
        ), claimed AS (
            UPDATE gantry.jobs j
            SET state = 'reserved', attempt = j.attempt + 1, reserved_at = clock_timestamp(), session_id = s.session_id,
                broker_id = $6::uuid,
                lease_expires_at = now() + coalesce(s.lease_ms, j.timeout_ms, $7::bigint) * interval '1 millisecond'
            FROM numbered c JOIN slots s ON s.slot = c.slot
            -- The id list makes the plan an index lookup of the few rows picked whatever the planner guesses of
            -- `numbered`'s size; a generic plan, not knowing it is small, hash-joined a sequential scan of every job.
            WHERE j.id = c.id AND j.id = ANY(ARRAY(SELECT id FROM numbered))
            RETURNING j.id, j.type, j.args, j.queue, j.priority, j.attempt, j.max_attempts, j.enqueued_at,
                      j.lease_expires_at, j.meta, s.request, c.slot, j.step_id
        ), started AS (
            INSERT INTO gantry.queue_starts (queue, started_at)
            SELECT queue, clock_timestamp() FROM claimed WHERE queue = ANY($8::text[])
        )
        SELECT * FROM claimed
        """

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 8)
        bindings.append(slots)
        bindings.append(queues)
        bindings.append(allowances)
        bindings.append(limitsApplied)
        bindings.append(total)
        bindings.append(brokerID)
        bindings.append(defaultLeaseMs)
        bindings.append(rateLimited)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

extension ClaimStatement {
    static let pipelined = PipelinedStatement(name: name, sql: sql)
    var pipelineParameters: [String?] {
        [slots, PostgresArrayLiteral.text(queues), PostgresArrayLiteral.integers(allowances), limitsApplied ? "t" : "f", String(total),
         brokerID.wireString, String(defaultLeaseMs), PostgresArrayLiteral.text(rateLimited)]
    }
}
