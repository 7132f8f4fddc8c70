import Foundation
import GantryProtocol

/// The limits an operator sets on what one request may cost, beyond the protocol's own bounds.
extension Broker {
    func checkWait(_ params: Reserve.Params) throws(RPCErrorObject) {
        guard params.waitMs <= configuration.maxWaitMs else {
            throw .invalidParams(field: "wait_ms", "must be at most \(configuration.maxWaitMs) on this broker (its max_wait_ms), got \(params.waitMs); poll again instead")
        }
    }

    func checkBatch(_ params: EnqueueBatch.Params) throws(RPCErrorObject) {
        guard params.jobs.count <= configuration.maxBatchJobs else {
            throw .invalidParams(field: "jobs", "holds \(params.jobs.count) jobs; this broker takes at most \(configuration.maxBatchJobs) per batch (its max_batch_jobs)")
        }
    }

    /// An event's payload, which a subscription may pass on as a job's args, takes the args' limit.
    func checkPayload(_ payload: JSONValue, field: String = "payload") throws(RPCErrorObject) {
        guard configuration.maxArgsBytes < configuration.maxLineBytes else { return }
        let size = (try? GantryJSON.makeEncoder().encode(payload).count) ?? 0
        if size > configuration.maxArgsBytes {
            throw .invalidParams(
                field: field,
                "is \(size) bytes of JSON; this broker takes at most \(configuration.maxArgsBytes) (its max_args_bytes), as for a job's args: publish a reference instead")
        }
    }

    /// Args larger than `maxArgsBytes` are refused naming the job; measured only when the limit is below the
    /// line limit, since a line within it cannot carry more.
    func checkArgs(_ jobs: [Enqueue.Params]) throws(RPCErrorObject) {
        guard configuration.maxArgsBytes < configuration.maxLineBytes else { return }
        let encoder = GantryJSON.makeEncoder()
        for (index, job) in jobs.enumerated() {
            let size = (try? encoder.encode(job.args).count) ?? 0
            if size > configuration.maxArgsBytes {
                throw .invalidParams(
                    field: jobs.count == 1 ? "args" : "jobs[\(index)].args",
                    "is \(size) bytes of JSON; this broker takes at most \(configuration.maxArgsBytes) (its max_args_bytes): store large payloads elsewhere and enqueue a reference")
            }
        }
    }
}
