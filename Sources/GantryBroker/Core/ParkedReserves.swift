import Synchronization

/// The long-polling `reserve` calls parked on this broker: holds their continuations and resumes them as
/// `Waitlist` (the pure rules of who waits for what) decides.
final class ParkedReserves: Sendable {
    private struct State {
        var list = Waitlist()
        var continuations: [Waitlist.Ticket: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    func register(queues: [String]) -> Waitlist.Ticket {
        state.withLock { $0.list.register(queues: queues) }
    }

    func remove(_ ticket: Waitlist.Ticket) {
        let continuation = state.withLock {
            $0.list.remove(ticket)
            return $0.continuations.removeValue(forKey: ticket)
        }
        continuation?.resume()
    }

    var waitedQueues: [String] { state.withLock { $0.list.waitedQueues } }
    var count: Int { state.withLock { $0.list.count } }

    func jobsAvailable(_ counts: [String: Int]) {
        let toResume = state.withLock { state in
            counts.flatMap { state.list.jobsAvailable(queue: $0.key, count: $0.value) }
                .compactMap { state.continuations.removeValue(forKey: $0) }
        }
        for continuation in toResume { continuation.resume() }
    }

    func wakeAll() {
        let toResume = state.withLock { state in
            state.list.wakeAll().compactMap { state.continuations.removeValue(forKey: $0) }
        }
        for continuation in toResume { continuation.resume() }
    }

    /// Sleeps until woken, the deadline passes, or the task is cancelled — whichever comes first.
    func wait(_ ticket: Waitlist.Ticket, until deadline: ContinuousClock.Instant) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let resumeNow = self.state.withLock { state -> Bool in
                            guard state.list.park(ticket) == .suspend else { return true }
                            state.continuations[ticket] = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    self.remove(ticket)
                }
            }
            group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
            await group.next()
            group.cancelAll()
        }
    }
}
