@testable import GantryClient
import GantryProtocol
import GantryTesting
import Synchronization
import Testing

/// The Worker's ack batching, against a stand-in for the broker whose first answer waits until the test lets it.
@Suite(.deadline(.seconds(60))) struct AckBatcherTests {
    /// Records every ack sent; holds the first answer back until `release()`, so later acks pile up meanwhile.
    final class StandInBroker: Sendable {
        let sent = Mutex<[Ack.Params]>([])
        private let gate = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))
        let answer: @Sendable (Ack.Params) throws -> Ack.Result

        init(answer: @escaping @Sendable (Ack.Params) throws -> Ack.Result = { params in
            params.ids.map { Ack.Result(acked: $0, lost: [], cancelRequestedIDs: []) } ?? Ack.Result()
        }) {
            self.answer = answer
        }

        func send(_ params: Ack.Params) async throws -> Ack.Result {
            let first = sent.withLock { sent in
                sent.append(params)
                return sent.count == 1
            }
            if first {
                await withCheckedContinuation { continuation in
                    let open = gate.withLock { gate in
                        if !gate.open { gate.waiting.append(continuation) }
                        return gate.open
                    }
                    if open { continuation.resume() }
                }
            }
            return try answer(params)
        }

        func release() {
            let waiting = gate.withLock { gate in
                gate.open = true
                defer { gate.waiting = [] }
                return gate.waiting
            }
            for continuation in waiting { continuation.resume() }
        }

        func waitUntilSent(_ count: Int) async throws {
            while sent.withLock({ $0.count }) < count { try await Task.sleep(for: .milliseconds(5)) }
        }
    }

    @Test func acksThatFinishWhileOneIsInFlightGoTogether() async throws {
        let broker = StandInBroker()
        let batcher = AckBatcher { try await broker.send($0) }
        let first = Task { try await batcher.ack("1", result: nil) }
        try await broker.waitUntilSent(1)
        let second = Task { try await batcher.ack("2", result: nil) }
        let third = Task { try await batcher.ack("3", result: ["sent": true]) }
        // Both wait behind the first: nothing more is sent until it is answered.
        try await Task.sleep(for: .milliseconds(100))
        #expect(broker.sent.withLock { $0.count } == 1)
        broker.release()
        for task in [first, second, third] { try await task.value }
        let sent = broker.sent.withLock { $0 }
        #expect(sent.count == 2)
        #expect(sent.first == Ack.Params(id: "1"), "an ack with none in flight goes out at once, alone")
        #expect(Set(sent.last?.ids ?? []) == ["2", "3"])
        #expect(sent.last?.results == ["3": ["sent": true]])
    }

    @Test func aLostLeaseFailsOnlyItsOwnAck() async throws {
        let broker = StandInBroker { params in
            guard let ids = params.ids else { return Ack.Result() }
            return Ack.Result(acked: ids.filter { $0 != "3" }, lost: [Ack.Lost(id: "3", state: .available)], cancelRequestedIDs: [])
        }
        let batcher = AckBatcher { try await broker.send($0) }
        let first = Task { try await batcher.ack("1", result: nil) }
        try await broker.waitUntilSent(1)
        let second = Task { try await batcher.ack("2", result: nil) }
        let third = Task { try await batcher.ack("3", result: nil) }
        try await Task.sleep(for: .milliseconds(100))
        broker.release()
        try await first.value
        try await second.value
        let error = await #expect(throws: RPCErrorObject.self) { try await third.value }
        #expect(error?.code == GantryErrorCode.leaseLost.rawValue)
        #expect(error?.data?["state"] == "available")
    }

    @Test func aBrokerWithoutIDsIsAckedOneByOne() async throws {
        let broker = StandInBroker { params in
            if params.ids != nil { throw RPCErrorObject.invalidParams(field: "ids", "unknown field") }
            return Ack.Result()
        }
        let batcher = AckBatcher { try await broker.send($0) }
        let first = Task { try await batcher.ack("1", result: nil) }
        try await broker.waitUntilSent(1)
        let others = (2...4).map { id in Task { try await batcher.ack(String(id), result: nil) } }
        try await Task.sleep(for: .milliseconds(100))
        broker.release()
        try await first.value
        for task in others { try await task.value }
        let sent = broker.sent.withLock { $0 }
        #expect(sent.filter { $0.ids != nil }.count == 1, "ids were tried once")
        #expect(Set(sent.compactMap(\.id)) == ["1", "2", "3", "4"])
        // Later acks go alone at once.
        let later = Task { try await batcher.ack("5", result: nil) }
        try await later.value
        #expect(broker.sent.withLock { $0.last } == Ack.Params(id: "5"))
    }
}

extension AckBatcherTests {
    @Test func largeResultsAreSplitOverSeveralAcks() async throws {
        let broker = StandInBroker()
        let batcher = AckBatcher { try await broker.send($0) }
        let first = Task { try await batcher.ack("1", result: nil) }
        try await broker.waitUntilSent(1)
        // Three results of 100 KiB each: two fit under the limit together, the third goes next.
        let big = JSONValue.string(String(repeating: "x", count: 100 * 1024))
        let others = (2...4).map { id in Task { try await batcher.ack(String(id), result: big) } }
        try await Task.sleep(for: .milliseconds(100))
        broker.release()
        try await first.value
        for task in others { try await task.value }
        let sent = broker.sent.withLock { $0 }
        #expect(sent.count == 3)
        #expect(sent.dropFirst().map { $0.ids?.count ?? 1 }.sorted() == [1, 2])
    }
}
