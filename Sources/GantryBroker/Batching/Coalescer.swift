import PostgresNIO
import Synchronization

/// Group commit: concurrent requests of one kind share one statement and one commit. A request that finds a
/// free flush slot goes out at once (no timer, so an idle broker adds no latency); requests that arrive while
/// every slot is busy wait in line and go together in the next flush. Each request still hears only after its own
/// rows are committed, and when a flush fails on a bad row, its requests are tried one by one so the bad one
/// fails alone.
final class Coalescer<Input: Sendable, Output: Sendable>: Sendable {
    typealias Flush = @Sendable ([Input]) async throws -> [Output]

    private struct Waiting: Sendable {
        var input: Input
        var continuation: CheckedContinuation<Output, any Error>
    }

    private struct State {
        var waiting: [Waiting] = []
        var flushing = 0
    }

    private let state = Mutex(State())
    private let slots: Int
    private let maxBatch: Int
    private let flush: Flush
    private let isAboutTheRows: @Sendable (any Error) -> Bool

    /// - Parameters:
    ///   - slots: flushes in flight at once (each holds a database connection).
    ///   - maxBatch: the most requests one flush carries.
    ///   - isAboutTheRows: whether a failed flush's requests should be tried one by one (the failure came from
    ///     what one of them held) rather than all failed (the database was away).
    init(slots: Int = 4, maxBatch: Int = 1000, isAboutTheRows: @escaping @Sendable (any Error) -> Bool = Coalescer.refusedForTheRows,
         flush: @escaping Flush) {
        self.slots = slots
        self.maxBatch = maxBatch
        self.isAboutTheRows = isAboutTheRows
        self.flush = flush
    }

    func submit(_ input: Input) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            let batch = state.withLock { state -> [Waiting]? in
                state.waiting.append(Waiting(input: input, continuation: continuation))
                guard state.flushing < slots else { return nil }
                state.flushing += 1
                return take(&state)
            }
            if let batch { Task { await drain(startingWith: batch) } }
        }
    }

    private func take(_ state: inout State) -> [Waiting] {
        let batch = Array(state.waiting.prefix(maxBatch))
        state.waiting.removeFirst(batch.count)
        return batch
    }

    /// Flushes, then keeps flushing whatever queued up meanwhile, until the line is empty.
    private func drain(startingWith first: [Waiting]) async {
        var batch = first
        while true {
            await run(batch)
            let next = state.withLock { state -> [Waiting]? in
                guard !state.waiting.isEmpty else {
                    state.flushing -= 1
                    return nil
                }
                return take(&state)
            }
            guard let next else { return }
            batch = next
        }
    }

    private func run(_ batch: [Waiting]) async {
        do {
            let outputs = try await flush(batch.map(\.input))
            guard outputs.count == batch.count else { throw MismatchedAnswers(asked: batch.count, answered: outputs.count) }
            for (waiting, output) in zip(batch, outputs) { waiting.continuation.resume(returning: output) }
        } catch where batch.count > 1 && isAboutTheRows(error) {
            for waiting in batch {
                do { waiting.continuation.resume(returning: try await flush([waiting.input])[0]) } catch {
                    waiting.continuation.resume(throwing: error)
                }
            }
        } catch {
            for waiting in batch { waiting.continuation.resume(throwing: error) }
        }
    }

    /// PostgreSQL refused the statement for what was in it (a bad value, a constraint), not because it was away.
    static func refusedForTheRows(_ error: any Error) -> Bool {
        if let pipeline = error as? PipelineError, case .statementFailed = pipeline { return !pipeline.meansPostgresIsAway }
        guard let psql = error.unwrappingTransaction as? PSQLError else { return false }
        return !psql.meansPostgresIsAway
    }
}

/// A flush answered a different number of requests than it was given: a bug, reported to each of them rather
/// than leaving any waiting for ever.
struct MismatchedAnswers: Error, CustomStringConvertible {
    let asked: Int
    let answered: Int
    var description: String { "a batched statement answered \(answered) of \(asked) requests" }
}
