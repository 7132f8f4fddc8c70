import Foundation
import GantryProtocol
import GantryTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Tests that hang on purpose, to show a deadline failing each with its name and its broker's log while the
/// run goes on. Out of the default run: `GANTRY_TEST_HANGS=1 swift test --filter HangTests`.
@Suite(
    .deadline(.seconds(20)),
    .enabled(if: ProcessInfo.processInfo.environment["GANTRY_TEST_HANGS"] != nil, "hangs on purpose; GANTRY_TEST_HANGS=1 runs it"))
struct HangTests {
    /// Waits for an answer that never comes (a reserve on an empty queue, asked again and again).
    @Test func waitsForAJobThatNeverComes() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        while true {
            _ = try await client.call("reserve", ["queues": ["nothing-here"], "wait_ms": 10_000], timeout: .seconds(3600))
        }
    }

    /// Stuck in a blocking call, which task cancellation cannot interrupt.
    @Test func blocksItsThread() async throws {
        let (broker, _) = try await startBroker()
        _ = try await broker.connect()
        sleep(40)
    }
}
