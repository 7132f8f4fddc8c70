import Foundation
import GantryProtocol
import CoreMetrics
import Logging
import Synchronization

/// What workers call about the jobs they run: `reserve` (with its long poll), `ack`, `nack` and `extend`.
struct LeaseHandlers {
    let broker: Broker

    func reserve(_ params: Reserve.Params, session: Session) async throws -> Reserve.Result {
        try broker.checkWait(params)
        var queues: [String] = []
        for queue in params.queues where !queues.contains(queue) { queues.append(queue) }
        let started = ContinuousClock.now
        let deadline = started + .milliseconds(params.waitMs)
        defer { broker.metrics.reserveWaitTime.recordNanoseconds((ContinuousClock.now - started).nanoseconds) }
        session.update { $0.willReserve() }
        let parked = broker.parkedReserves
        while true {
            if broker.isDraining || session.isClosing { return Reserve.Result(jobs: []) }
            if session.isQuiet {
                // Told to take nothing new: wait out the poll rather than answer at once, so a worker that does
                // not understand the notification does not spin.
                await wait(for: parked.register(queues: []), session: session, until: deadline)
                return Reserve.Result(jobs: [])
            }
            let ticket = parked.register(queues: queues)
            let claim: JobStore.Claim
            do {
                let limited = broker.knownQueueLimits.limited(among: queues)
                if !limited.isEmpty {
                    claim = try await broker.jobStore.claimJobs(
                        queues: queues, max: params.max, sessionID: session.id, leaseMs: params.leaseMs,
                        defaultLeaseMs: broker.configuration.defaultLeaseMs, limited: limited)
                } else {
                    let request = JobStore.ClaimRequest(sessionID: session.id, max: params.max, leaseMs: params.leaseMs)
                    claim = JobStore.Claim(jobs: try await broker.claims.claim(queues: queues, request))
                }
            } catch {
                parked.remove(ticket)
                throw error
            }
            if !claim.jobs.isEmpty || ContinuousClock.now >= deadline {
                parked.remove(ticket)
                session.update { $0.reserved(claim.jobs) }
                return Reserve.Result(jobs: claim.jobs)
            }
            // A full rate window frees up at a known time; nobody announces it.
            await wait(for: ticket, session: session, until: min(deadline, claim.rateLimitedUntil ?? deadline))
            if Task.isCancelled { return Reserve.Result(jobs: []) }
        }
    }

    /// Parks a reserve until jobs are announced, the deadline passes, or the session closes.
    private func wait(for ticket: Waitlist.Ticket, session: Session, until deadline: ContinuousClock.Instant) async {
        if session.update({ $0.startWaiting(ticket) }) {
            await broker.parkedReserves.wait(ticket, until: deadline)
            session.update { $0.stopWaiting(ticket) }
        }
        broker.parkedReserves.remove(ticket)
    }

    func ack(_ params: Ack.Params, session: Session) async throws -> Ack.Result {
        if let ids = params.ids { return try await ackMany(ids, results: params.results ?? [:], session: session) }
        guard let wireID = params.id else { throw RPCErrorObject.invalidParams(field: "id", "is required") }
        guard let id = Int64(wireID) else { throw RPCErrorObject.notFound(jobID: wireID) }
        let outcome: JobStore.Completed
        if params.stepsOperation {
            // Checked against the operation's plan and written with the ack, in a transaction of its own.
            outcome = try await broker.operationStore.completeStep(
                id: id, wireID: wireID, sessionID: session.id, result: params.result, set: params.set, jump: params.jumpTo
            ) ?? JobStore.Completed(held: false, cancelRequested: false)
        } else {
            outcome = try await broker.acks.submit(JobStore.Completion(id: id, sessionID: session.id, result: params.result))
        }
        guard outcome.held else { throw try await leaseProblem(id: id, wireID: wireID) }
        if let queue = acked(wireID, session: session) { await broker.queues.slotFreed(queue: queue) }
        return Ack.Result(cancelRequested: outcome.cancelRequested ? true : nil)
    }

    /// `ack` with `ids`: one statement and one commit for them all; an id whose lease is lost is answered in
    /// `lost` with its job's state, and the others are acked all the same.
    private func ackMany(_ wireIDs: [String], results: [String: JSONValue], session: Session) async throws -> Ack.Result {
        let numbered = wireIDs.compactMap { wireID in Int64(wireID).map { (wireID, $0) } }
        let outcomes = numbered.isEmpty ? [] : try await broker.jobStore.completeJobs(numbered.map { wireID, id in
            JobStore.Completion(id: id, sessionID: session.id, result: results[wireID])
        })
        var acked: [String] = []
        var cancelRequested: [String] = []
        var freedQueues: Set<String> = []
        for ((wireID, _), outcome) in zip(numbered, outcomes) where outcome.held {
            acked.append(wireID)
            if outcome.cancelRequested { cancelRequested.append(wireID) }
            if let queue = self.acked(wireID, session: session) { freedQueues.insert(queue) }
        }
        for queue in freedQueues { await broker.queues.slotFreed(queue: queue) }
        let ackedSet = Set(acked)
        let lostIDs = wireIDs.filter { !ackedSet.contains($0) }
        let states = lostIDs.isEmpty ? [:] : try await broker.jobStore.jobStates(ids: lostIDs.compactMap { Int64($0) })
        let lost = lostIDs.map { Ack.Lost(id: $0, state: Int64($0).flatMap { states[$0] }) }
        return Ack.Result(acked: acked, lost: lost, cancelRequestedIDs: cancelRequested)
    }

    /// The session's bookkeeping and the metrics of an acked job; returns its queue.
    private func acked(_ wireID: String, session: Session) -> String? {
        guard let lease = session.update({ $0.finished(wireID) }) else { return nil }
        broker.metrics.count(.completed, queue: lease.queue, type: lease.type)
        broker.metrics.jobRan(queue: lease.queue, type: lease.type, for: ContinuousClock.now - lease.reservedAt)
        if let operation = lease.operation { broker.metrics.stepRan(operation: operation, type: lease.type, for: ContinuousClock.now - lease.reservedAt) }
        return lease.queue
    }

    func nack(_ params: Nack.Params, session: Session) async throws -> Nack.Result {
        guard let id = Int64(params.id) else { throw RPCErrorObject.notFound(jobID: params.id) }
        guard let lease = session.update({ $0.leases.lease(for: params.id) }) else { throw try await leaseProblem(id: id, wireID: params.id) }
        let decision = broker.retryPolicy.decide(
            attempt: lease.attempt, maxAttempts: lease.maxAttempts, retryRequested: params.retry, retryInMs: params.retryInMs)
        let failure = FailedAttempt.nacked(params.error, workerID: session.workerID)
        let outcome: JobStore.FailureOutcome = switch decision {
        case .retry(let afterMs): .retry(afterMs: afterMs)
        case .dead: .dead
        }
        guard let recorded = try await broker.jobStore.failJob(id: id, sessionID: session.id, failure: failure, outcome: outcome) else {
            throw try await leaseProblem(id: id, wireID: params.id)
        }
        session.update { $0.finished(params.id) }
        await broker.queues.slotFreed(queue: lease.queue)
        let metrics = broker.metrics
        metrics.count(.failed, queue: lease.queue, type: lease.type)
        metrics.jobRan(queue: lease.queue, type: lease.type, for: ContinuousClock.now - lease.reservedAt)
        if let operation = lease.operation { metrics.stepRan(operation: operation, type: lease.type, for: ContinuousClock.now - lease.reservedAt) }
        switch recorded {
        case .finished(let state):
            if state == .dead { metrics.count(.dead, queue: lease.queue, type: lease.type) }
            return Nack.Result(state: state)
        case .retry(let queue, let nextRunAt):
            metrics.count(.retried, queue: lease.queue, type: lease.type)
            let now = decision == .retry(afterMs: 0)
            if now { await broker.announceAvailable([queue: 1]) }
            return Nack.Result(state: now ? .available : .scheduled, nextRunAt: nextRunAt)
        }
    }

    func extend(_ params: Extend.Params, session: Session) async throws -> Extend.Result {
        let ids = params.ids.compactMap { Int64($0) }
        let leases = try await broker.jobStore.extendLeases(
            ids: ids, sessionID: session.id, leaseMs: params.leaseMs, defaultLeaseMs: broker.configuration.defaultLeaseMs)
        let extended = Set(leases.map(\.id))
        return Extend.Result(leases: leases, lost: params.ids.filter { !extended.contains($0) })
    }

    /// Why an ack/nack found no lease: the job does not exist, or someone else (or nobody) holds it now.
    private func leaseProblem(id: Int64, wireID: String) async throws -> RPCErrorObject {
        guard let state = try await broker.jobStore.jobState(id: id) else { return .notFound(jobID: wireID) }
        return .leaseLost(jobID: wireID, state: state.rawValue)
    }
}
