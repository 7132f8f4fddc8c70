import Foundation
import GantryProtocol
import NIOCore
import NIOExtras
import NIOPosix
import Synchronization

/// A raw newline-delimited client for tests: it sends lines exactly as given and reads lines as they come,
/// which is what a person with `nc` sees.
public final class LineClient: Sendable {
    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private let state = Mutex(State())
    private let nextID = Atomic<Int64>(1000)

    private struct State {
        var lines: [String] = []
        var waiter: CheckedContinuation<Void, Never>?
        var closed = false
    }

    public struct Timeout: Error, CustomStringConvertible {
        public let description: String
    }

    public static func connect(host: String, port: Int) async throws -> LineClient {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let client = LineClient(channel: channel)
        Task { await client.readLoop() }
        return client
    }

    private init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        self.channel = channel
    }

    deinit {
        channel.outbound.finish()
        channel.channel.close(promise: nil)
    }

    private func readLoop() async {
        do {
            for try await buffer in channel.inbound {
                let line = String(buffer: buffer)
                let waiter = state.withLock { state in
                    state.lines.append(line)
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume()
            }
        } catch {}
        let waiter = state.withLock { state in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Sends `text` followed by `\n`.
    public func send(_ text: String) async throws {
        try await sendRaw(Data((text + "\n").utf8))
    }

    public func sendRaw(_ bytes: Data) async throws {
        try await channel.outbound.write(ByteBuffer(bytes: bytes))
    }

    /// The next line the broker sent, or nil once the connection is closed.
    public func nextLine(timeout: Duration = .seconds(10)) async throws -> String? {
        try await nextLine(where: { _ in true }, timeout: timeout)
    }

    /// The first received line (in arrival order) that matches, leaving others for later calls.
    public func nextLine(where matches: @escaping @Sendable (String) -> Bool, timeout: Duration = .seconds(10)) async throws -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (found, closed) = state.withLock { state -> (String?, Bool) in
                if let index = state.lines.firstIndex(where: matches) { return (state.lines.remove(at: index), false) }
                return (nil, state.closed)
            }
            if let found { return found }
            if closed { return nil }
            guard ContinuousClock.now < deadline else { throw Timeout(description: "no matching line within \(timeout)") }
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await withCheckedContinuation { continuation in
                        let resumeNow = self.state.withLock { state -> Bool in
                            if state.closed || state.lines.contains(where: matches) { return true }
                            state.waiter?.resume()
                            state.waiter = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                }
                group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
                await group.next()
                group.cancelAll()
                let waiter = self.state.withLock { state in
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume()
            }
        }
    }

    /// Sends a request and returns the response with its id, whatever else arrives meanwhile.
    public func call(_ method: String, _ params: JSONValue? = nil, timeout: Duration = .seconds(10)) async throws -> RPCResponse {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        try await sendRequest(method, params, id: id)
        return try await response(id: id, timeout: timeout)
    }

    public func sendRequest(_ method: String, _ params: JSONValue? = nil, id: Int64) async throws {
        var request: JSONObject = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method)]
        if let params { request["params"] = params }
        let data = try GantryJSON.makeEncoder().encode(JSONValue.object(request))
        try await sendRaw(data + Data("\n".utf8))
    }

    public func response(id: Int64, timeout: Duration = .seconds(10)) async throws -> RPCResponse {
        let marker = "\"id\":\(id),"
        guard let line = try await nextLine(where: { $0.contains(marker) }, timeout: timeout) else {
            throw Timeout(description: "connection closed before the response to request \(id)")
        }
        return try GantryJSON.makeDecoder().decode(RPCResponse.self, from: Data(line.utf8))
    }

    /// Calls and decodes the result, failing the test's expectation with the error when there is one.
    public func result(_ method: String, _ params: JSONValue? = nil, timeout: Duration = .seconds(10)) async throws -> JSONValue {
        let response = try await call(method, params, timeout: timeout)
        if let error = response.error { throw error }
        return response.result ?? .null
    }

    public func close() async {
        try? await channel.channel.close()
    }
}
