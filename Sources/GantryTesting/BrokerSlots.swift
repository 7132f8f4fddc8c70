import Foundation
import Synchronization

/// Caps how many `gantryd` processes the tests of one process run at once. Swift Testing starts every test
/// together, and on a 2-core machine a hundred brokers, each with its background chores, starve the
/// timing-sensitive tests; past the cap a test waits for a slot. `GANTRY_TEST_MAX_BROKERS` overrides it.
final class BrokerSlots: Sendable {
    static let shared = BrokerSlots(
        limit: ProcessInfo.processInfo.environment["GANTRY_TEST_MAX_BROKERS"].flatMap { Int($0) } ?? 10)

    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    init(limit: Int) {
        state = Mutex(State(free: max(1, limit)))
    }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                guard state.free > 0 else {
                    state.waiting.append(continuation)
                    return false
                }
                state.free -= 1
                return true
            }
            if now { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.free += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
