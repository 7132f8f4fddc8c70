import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Enqueue: new jobs in, with unique keys honoured.
extension JobStore {

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
            run_at = params.runAt.map(GantryJSON.formatMicroseconds)
            delay_ms = params.delayMs ?? 0
            max_attempts = params.maxAttempts
            timeout_ms = params.timeoutMs
            expires_at = params.expiresAt.map(GantryJSON.formatMicroseconds)
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
        let inserted: [InsertedRow]
        if jobs.allSatisfy({ $0.uniqueKey == nil }) {
            // One statement, answered after its own Sync has committed it: no BEGIN and COMMIT round trips.
            let rows = try await storage.pipelines.execute(InsertJobsStatement.pipelined, try insertStatement(jobs).pipelineParameters)
            inserted = try (0..<rows.count).map { row throws(PipelineError) in
                InsertedRow(id: try rows.int64(row, 0), state: JobState(rawValue: rows.string(row, 1)) ?? .available, key: nil)
            }
        } else {
            inserted = try await storage.withConnection { connection in
                try await Self.committed(on: connection, logger: logger) { connection in try await insertRows(jobs, on: connection) }
            }
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

    private func insertStatement(_ jobs: [Enqueue.Params]) throws -> InsertJobsStatement {
        let records = try JSONObjectWriter.array(jobs.map(NewJobRecord.init))
        return InsertJobsStatement(jobs: String(decoding: records, as: UTF8.self), brokerID: brokerID)
    }

    private func insertStatement(_ jobs: [Enqueue.Params], on connection: PostgresConnection) async throws -> [InsertedRow] {
        let rows = try await connection.execute(try insertStatement(jobs), logger: logger)
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
}

/// Written member by member (every enqueue writes one): what Codable would write, in the same order.
extension JobStore.NewJobRecord: DirectJSONWritable {
    func writeJSON(into object: inout JSONObjectWriter) throws(JSONWriteError) {
        object.string("type", type)
        try object.value("args", args)
        object.string("queue", queue)
        object.integer("priority", priority)
        object.string("run_at", run_at)
        object.integer("delay_ms", delay_ms)
        object.integer("max_attempts", max_attempts)
        object.integer("timeout_ms", timeout_ms)
        object.string("expires_at", expires_at)
        object.integer("queue_timeout_ms", queue_timeout_ms)
        object.string("unique_key", unique_key)
        object.integer("unique_for_ms", unique_for_ms)
        object.strings("tags", tags)
        try object.value("meta", meta)
    }
}
