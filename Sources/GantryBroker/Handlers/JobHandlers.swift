import Foundation
import GantryProtocol
import CoreMetrics
import Logging
import Synchronization

/// What producers call: `enqueue`, `enqueue_batch` and `jobs.get`.
struct JobHandlers {
    let broker: Broker

    func enqueue(_ params: Enqueue.Params) async throws -> Enqueue.Result {
        try await insert([params])[0]
    }

    func enqueueBatch(_ params: EnqueueBatch.Params) async throws -> EnqueueBatch.Result {
        try broker.checkBatch(params)
        let results = try await insert(params.jobs)
        let duplicates = results.indices.filter { results[$0].duplicate == true }
        return EnqueueBatch.Result(ids: results.map(\.id), duplicates: duplicates.isEmpty ? nil : duplicates)
    }

    private func insert(_ jobs: [Enqueue.Params]) async throws -> [Enqueue.Result] {
        try broker.checkArgs(jobs)
        try broker.knownTypeSchemas.check(jobs)
        let results = jobs.count == 1 ? [try await broker.enqueues.submit(jobs[0])] : try await broker.jobStore.insertJobs(jobs)
        // The store already notified every broker in the enqueue's transaction; wake our own waiters without
        // waiting for the notification's round trip.
        var available: [String: Int] = [:]
        for (job, result) in zip(jobs, results) where result.duplicate != true {
            if result.state == .available { available[job.queue, default: 0] += 1 }
            broker.metrics.count(.enqueued, queue: job.queue, type: job.type)
        }
        if !available.isEmpty { broker.parkedReserves.jobsAvailable(available) }
        return results
    }

    func get(_ params: JobsGet.Params, session: Session) async throws -> Job {
        guard let id = Int64(params.id), let job = try await broker.jobStore.job(id: id) else { throw RPCErrorObject.notFound(jobID: params.id) }
        try broker.checkVisible(job, session: session)
        return job
    }
}
