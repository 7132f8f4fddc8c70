import Foundation
import GantryProtocol
import Synchronization

/// Acks jobs that finish together in one `ack` with `ids` (one request, one commit on the broker): an ack with
/// none in flight goes out at once (so an idle worker adds no latency), and those that finish while it is in
/// flight wait and go together next. Each caller still hears only of its own job: done, or lease lost.
final class AckBatcher: Sendable {
    typealias Send = @Sendable (Ack.Params) async throws -> Ack.Result

    private struct Pending: Sendable {
        var id: String
        var result: JSONValue?
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var pending: [Pending] = []
        var sending = false
        /// Set when the broker refused `ids` (one older than the `ids` form): every ack then goes alone.
        var oneByOne = false
    }

    private let state = Mutex(State())
    private let send: Send

    init(send: @escaping Send) {
        self.send = send
    }

    /// Acks the job; throws the broker's error (lease lost, for one) if it was not acked.
    func ack(_ id: String, result: JSONValue?) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let batch = state.withLock { state -> [Pending]? in
                state.pending.append(Pending(id: id, result: result, continuation: continuation))
                guard !state.sending else { return nil }
                state.sending = true
                defer { state.pending = [] }
                return state.pending
            }
            if let batch { Task { await self.drain(startingWith: batch) } }
        }
    }

    private func drain(startingWith first: [Pending]) async {
        var batch = first
        while true {
            await flush(batch)
            let next = state.withLock { state -> [Pending]? in
                guard !state.pending.isEmpty else {
                    state.sending = false
                    return nil
                }
                defer { state.pending = [] }
                return state.pending
            }
            guard let next else { return }
            batch = next
        }
    }

    /// The most bytes of results one `ack` with `ids` carries: far below the broker's 1 MiB line limit, since a
    /// line over it closes the connection, and every lease the worker holds goes with it.
    static let maxResultBytes = 256 * 1024

    private func flush(_ batch: [Pending]) async {
        if batch.count == 1 || state.withLock({ $0.oneByOne }) {
            for pending in batch { await ackAlone(pending) }
            return
        }
        for group in Self.groups(batch) { await flushTogether(group) }
    }

    /// Splits a batch into the `ack`s that may carry it: at most `Ack.maxIDs` ids and `maxResultBytes` of results each.
    private static func groups(_ batch: [Pending]) -> [[Pending]] {
        let encoder = GantryJSON.makeEncoder()
        var groups: [[Pending]] = [[]]
        var bytes = 0
        for pending in batch {
            let size = pending.result.map { (try? encoder.encode($0).count) ?? 0 } ?? 0
            if !groups[groups.count - 1].isEmpty && (groups[groups.count - 1].count == Ack.maxIDs || bytes + size > maxResultBytes) {
                groups.append([])
                bytes = 0
            }
            groups[groups.count - 1].append(pending)
            bytes += size
        }
        return groups
    }

    private func flushTogether(_ batch: [Pending]) async {
        if batch.count == 1 || state.withLock({ $0.oneByOne }) {
            for pending in batch { await ackAlone(pending) }
            return
        }
        do {
            let results = batch.reduce(into: [String: JSONValue]()) { results, pending in results[pending.id] = pending.result }
            let answer = try await send(Ack.Params(ids: batch.map(\.id), results: results.isEmpty ? nil : results))
            let lost = Dictionary((answer.lost ?? []).map { ($0.id, $0.state) }, uniquingKeysWith: { first, _ in first })
            for pending in batch {
                if let state = lost[pending.id] {
                    pending.continuation.resume(throwing: state.map { RPCErrorObject.leaseLost(jobID: pending.id, state: $0.rawValue) }
                        ?? RPCErrorObject.notFound(jobID: pending.id))
                } else {
                    pending.continuation.resume()
                }
            }
        } catch let error as RPCErrorObject
            where error.code == GantryErrorCode.invalidParams.rawValue && error.data?["field"]?.stringValue == "ids" {
            state.withLock { $0.oneByOne = true }
            for pending in batch { await ackAlone(pending) }
        } catch {
            for pending in batch { pending.continuation.resume(throwing: error) }
        }
    }

    private func ackAlone(_ pending: Pending) async {
        do {
            _ = try await send(Ack.Params(id: pending.id, result: pending.result))
            pending.continuation.resume()
        } catch {
            pending.continuation.resume(throwing: error)
        }
    }
}
