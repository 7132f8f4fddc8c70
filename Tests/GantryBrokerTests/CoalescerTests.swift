@testable import GantryBroker
import Synchronization
import GantryTesting
import Testing

@Suite(.deadline(.seconds(60))) struct CoalescerTests {
    struct BadRow: Error {}

    /// Records each flush's inputs; a flush holding a negative number fails as a whole, as a statement would.
    final class Flushes: Sendable {
        let seen = Mutex<[[Int]]>([])
        func flush(_ inputs: [Int]) async throws -> [String] {
            seen.withLock { $0.append(inputs) }
            try await Task.sleep(for: .milliseconds(20))
            if inputs.contains(where: { $0 < 0 }) { throw BadRow() }
            return inputs.map { "done \($0)" }
        }
    }

    @Test func concurrentRequestsShareFlushesAndEachGetsItsOwnAnswer() async throws {
        let flushes = Flushes()
        let coalescer = Coalescer<Int, String>(slots: 1, isAboutTheRows: { $0 is BadRow }) { try await flushes.flush($0) }
        let answers = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for number in 0..<50 { group.addTask { (number, try await coalescer.submit(number)) } }
            return try await group.reduce(into: [Int: String]()) { $0[$1.0] = $1.1 }
        }
        #expect(answers.count == 50)
        #expect(answers.allSatisfy { $0.value == "done \($0.key)" })
        let seen = flushes.seen.withLock { $0 }
        #expect(seen.count < 50, "requests waiting behind a flush went together: \(seen.map(\.count))")
        #expect(seen.flatMap { $0 }.sorted() == Array(0..<50))
    }

    @Test func aBadRowFailsAloneAndAnOutageFailsAll() async throws {
        let flushes = Flushes()
        let coalescer = Coalescer<Int, String>(slots: 1, isAboutTheRows: { $0 is BadRow }) { try await flushes.flush($0) }
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for number in [1, 2, -3, 4, 5, 6] {
                group.addTask { (number, (try? await coalescer.submit(number)) != nil) }
            }
            return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        #expect(outcomes == [1: true, 2: true, -3: false, 4: true, 5: true, 6: true])

        struct Away: Error {}
        let failing = Coalescer<Int, String>(slots: 1, isAboutTheRows: { $0 is BadRow }) { _ in throw Away() }
        let failures = await withTaskGroup(of: Bool.self) { group in
            for number in 0..<5 { group.addTask { (try? await failing.submit(number)) == nil } }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(failures == 5)
    }
}
