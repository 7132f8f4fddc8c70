import Foundation
import Synchronization

/// Caps how many tests run `gantryd` processes at once. Swift Testing starts every test together, and on a
/// 2-core machine a hundred brokers, each with its background chores, starve the timing-sensitive tests; past
/// the cap a test waits for a slot. A slot belongs to the task that took it (a test's own task), so a test
/// starting a second or third broker never waits for itself, which is what would deadlock. A wait longer than
/// a minute gives up and goes ahead, so a test that starts brokers from other tasks cannot hang the suite.
/// `GANTRY_TEST_MAX_BROKERS` sets the cap.
final class BrokerSlots: Sendable {
    static let shared = BrokerSlots(
        limit: ProcessInfo.processInfo.environment["GANTRY_TEST_MAX_BROKERS"].flatMap { Int($0) } ?? 8)

    /// Who holds a slot: the current task, identified while it lives.
    typealias Owner = Int

    static var currentOwner: Owner { withUnsafeCurrentTask { $0?.hashValue } ?? 0 }

    private struct State {
        var brokersByOwner: [Owner: Int] = [:]
        var nextTicket = 0
        var waiting: [(ticket: Int, owner: Owner, continuation: CheckedContinuation<Void, Never>)] = []
        /// Tickets whose patience ran out before they started waiting.
        var impatient: Set<Int> = []
    }

    private let limit: Int
    private let patience: Duration
    private let state = Mutex(State())

    init(limit: Int, patience: Duration = .seconds(60)) {
        self.limit = max(1, limit)
        self.patience = patience
    }

    func acquire(for owner: Owner) async {
        let ticket: Int? = state.withLock { state in
            if let held = state.brokersByOwner[owner] {
                state.brokersByOwner[owner] = held + 1
                return nil
            }
            if state.brokersByOwner.count < limit {
                state.brokersByOwner[owner] = 1
                return nil
            }
            state.nextTicket += 1
            return state.nextTicket
        }
        guard let ticket else { return }
        let patience = self.patience
        let timeout = Task { [weak self] in
            try? await Task.sleep(for: patience)
            self?.stopWaiting(ticket)
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let goNow = state.withLock { state -> Bool in
                // A slot freed, or patience ran out, between deciding to wait and getting here.
                if state.brokersByOwner.count < limit || state.impatient.remove(ticket) != nil {
                    state.brokersByOwner[owner, default: 0] += 1
                    return true
                }
                state.waiting.append((ticket, owner, continuation))
                return false
            }
            if goNow { continuation.resume() }
        }
        timeout.cancel()
    }

    /// A waiter out of patience goes ahead, over the cap.
    private func stopWaiting(_ ticket: Int) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let index = state.waiting.firstIndex(where: { $0.ticket == ticket }) else {
                state.impatient.insert(ticket)
                return nil
            }
            let waiter = state.waiting.remove(at: index)
            state.brokersByOwner[waiter.owner, default: 0] += 1
            return waiter.continuation
        }
        continuation?.resume()
    }

    func release(for owner: Owner) {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let held = state.brokersByOwner[owner] else { return nil }
            if held > 1 {
                state.brokersByOwner[owner] = held - 1
                return nil
            }
            state.brokersByOwner.removeValue(forKey: owner)
            guard state.brokersByOwner.count < limit, !state.waiting.isEmpty else { return nil }
            let waiter = state.waiting.removeFirst()
            state.brokersByOwner[waiter.owner, default: 0] += 1
            return waiter.continuation
        }
        next?.resume()
    }
}
