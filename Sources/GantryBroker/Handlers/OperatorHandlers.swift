import Foundation
import GantryProtocol
import CoreMetrics
import Logging
import Synchronization
import NIOCore

/// What operators call about jobs: list, retry, cancel, discard, clean up, and the broker's `stats`.
struct OperatorHandlers {
    let broker: Broker

    func list(_ params: JobsList.Params) async throws -> JobsList.Result {
        let filter = JobStore.JobFilter(
            queue: params.queue, state: params.state, type: params.type, tag: params.tag, args: params.args,
            enqueuedAfter: params.enqueuedAfter, enqueuedBefore: params.enqueuedBefore, beforeID: params.cursor.flatMap { Int64($0) })
        let jobs = try await broker.jobStore.listJobs(filter, limit: params.limit)
        return JobsList.Result(jobs: jobs, nextCursor: jobs.count == params.limit ? jobs.last?.id : nil)
    }

    func cancel(_ params: JobsCancel.Params) async throws -> JobsCancel.Result {
        guard let id = Int64(params.id) else { throw RPCErrorObject.notFound(jobID: params.id) }
        guard let state = try await broker.jobStore.cancelJob(id: id) else {
            throw try await stateProblem(id: id, wireID: params.id, action: "cancelled", allowed: "scheduled, available, reserved")
        }
        broker.logger.info(state == .reserved ? "cancellation of a running job asked by an operator" : "job cancelled by an operator",
                           metadata: ["id": "\(id)"])
        return JobsCancel.Result(id: params.id, state: state)
    }

    func discard(_ params: JobsDiscard.Params) async throws -> JobsDiscard.Result {
        guard let id = Int64(params.id) else { throw RPCErrorObject.notFound(jobID: params.id) }
        guard try await broker.jobStore.discardJob(id: id) else {
            if let operationID = try await broker.operationStore.operationOfLiveJob(id: id) {
                throw RPCErrorObject(.wrongState, "Job \(params.id) is a step of operation \(operationID) and has not finished; discarded, the operation would wait for it for ever. Cancel it (jobs.cancel) or the operation (operations.cancel) instead.", data: ["id": .string(params.id), "operation_id": .string(String(operationID))])
            }
            throw try await stateProblem(id: id, wireID: params.id, action: "discarded", allowed: "waiting or finished")
        }
        broker.logger.info("job discarded by an operator", metadata: ["id": "\(id)"])
        return JobsDiscard.Result(id: params.id)
    }

    func retry(_ params: JobsRetry.Params) async throws -> JobsRetry.Result {
        guard let id = Int64(params.id) else { throw RPCErrorObject.notFound(jobID: params.id) }
        guard let queue = try await broker.jobStore.retryJob(id: id) else {
            if let holder = try await broker.jobStore.uniqueKeyHolder(forFinishedJob: id) {
                throw RPCErrorObject.uniqueKeyTaken(jobID: params.id, holderID: String(holder))
            }
            throw try await stateProblem(
                id: id, wireID: params.id, action: "retried", allowed: JobStore.retryableStates.map(\.rawValue).joined(separator: ", "))
        }
        broker.logger.info("job retried by an operator", metadata: ["id": "\(id)", "queue": "\(queue)"])
        await broker.announceAvailable([queue: 1])
        return JobsRetry.Result(id: params.id, state: .available)
    }

    /// Why an operator's action did not apply: no such job, or it is in a state the action does not take.
    private func stateProblem(id: Int64, wireID: String, action: String, allowed: String) async throws -> RPCErrorObject {
        guard let state = try await broker.jobStore.jobState(id: id) else { return .notFound(jobID: wireID) }
        return .wrongState(jobID: wireID, state: state.rawValue, action: action, allowed: allowed)
    }

    /// Deletes in statements of 1,000 rows until `limit` is reached or nothing more matches.
    func cleanup(_ params: Cleanup.Params) async throws -> Cleanup.Result {
        var deleted = 0
        var more = true
        while more && deleted < params.limit {
            let batch = min(1000, params.limit - deleted)
            let removed = try await broker.jobStore.pruneFinishedJobs(
                states: params.states, olderThanMs: params.olderThanMs, queue: params.queue, batch: batch, exclusive: false)
            deleted += removed
            more = removed == batch
        }
        // Operations have no queue; a cleanup of one queue's jobs leaves them alone.
        var deletedOperations: Int?
        let operationStates = Cleanup.operationStates(for: params.states)
        if params.queue == nil && !operationStates.isEmpty {
            deletedOperations = try await broker.operationStore.pruneFinished(
                states: operationStates, olderThanMs: params.olderThanMs, batch: params.limit)
        }
        broker.logger.info("finished jobs cleaned up by an operator", metadata: [
            "deleted": "\(deleted)", "states": "\(params.states.map(\.rawValue))", "older_than_ms": "\(params.olderThanMs)",
            "operations": "\(deletedOperations ?? 0)",
        ])
        return Cleanup.Result(deleted: deleted, more: more, deletedOperations: deletedOperations)
    }

    func stats() async throws -> Stats.Result {
        let queues = try await broker.queues.stats()
        let (connections, workers) = broker.counts.withLock { ($0.connections, $0.workers) }
        let uptime = ContinuousClock.now - broker.startedAt
        return Stats.Result(queues: queues, broker: Stats.BrokerStats(
            id: broker.id.wireString, version: broker.configuration.version,
            uptimeMs: TimeAmount(uptime).nanoseconds / 1_000_000,
            connections: connections, workers: workers))
    }
}
