import ChildProcesses
import Foundation
import Synchronization
import Testing

/// A time limit on every test of a suite (`@Suite(.deadline(.seconds(300)))`): a test still running when it
/// passes fails with its name, the limit, and the tail of the log of every broker it started; those brokers
/// are killed (which ends any wait for their answers) and the test is cancelled. The issue is reported the
/// moment the limit passes, so even a test stuck in a call that ignores cancellation is named while it hangs
/// (and `scripts/stage.py` stops the whole run later). Swift Testing's own `.timeLimit` counts in whole
/// minutes and says nothing of the brokers.
public struct TestDeadline: TestTrait, SuiteTrait, TestScoping {
    public let limit: Duration

    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let brokers = StartedBrokers()
        let limit = self.limit
        try await withoutActuallyEscaping(function) { function in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await Self.$startedBrokers.withValue(brokers) { try await function() }
                    return true
                }
                group.addTask {
                    try? await Task.sleep(for: limit)
                    return false
                }
                // The test's own error, if it throws first, goes up as it is.
                let finished = try await group.next()!
                group.cancelAll()
                if finished { return }
                let logs = brokers.stopAll()
                Issue.record(Comment(rawValue: """
                    \(test.name) did not finish within its time limit of \(limit); it is cancelled and its brokers killed.
                    \(logs.isEmpty ? "It started no broker." : logs)
                    """), sourceLocation: test.sourceLocation)
                // Whatever the test throws now comes of being cancelled; the issue above is what counts.
                while (try? await group.next()) != nil {}
            }
        }
    }

    // MARK: the brokers a test started

    @TaskLocal static var startedBrokers: StartedBrokers?

    /// Called by `BrokerProcess` for each broker it starts, so a timed-out test can show and stop them.
    static func brokerStarted(_ process: ChildProcess, logFile: String) {
        startedBrokers?.add(process, logFile: logFile)
    }

    final class StartedBrokers: Sendable {
        private let brokers = Mutex<[(process: ChildProcess, logFile: String)]>([])

        func add(_ process: ChildProcess, logFile: String) {
            brokers.withLock { $0.append((process, logFile)) }
        }

        /// Kills every broker still running and returns the tail of each one's log.
        func stopAll() -> String {
            brokers.withLock { brokers in
                brokers.map { broker in
                    let state = broker.process.isRunning ? "was still running; killed" : "had ended: \(broker.process.termination()!)"
                    broker.process.signal(SIGKILL)
                    let log = (try? String(contentsOfFile: broker.logFile, encoding: .utf8)) ?? "(its log is gone)"
                    return "gantryd pid \(broker.process.pid) \(state); the end of its log:\n\(log.suffix(4000))"
                }.joined(separator: "\n")
            }
        }
    }
}

extension Trait where Self == TestDeadline {
    /// Fails each test that runs longer than `limit`, showing its brokers' logs; see `TestDeadline`.
    public static func deadline(_ limit: Duration) -> TestDeadline {
        TestDeadline(limit: limit)
    }
}
