import Foundation

/// `queues.pause`: the queue hands out nothing (on every broker, across restarts) until resumed; enqueueing
/// to it still works. `{"jsonrpc":"2.0","id":1,"method":"queues.pause","params":{"queue":"mail"}}`
public enum QueuesPause: RPCMethod {
    public static let name = "queues.pause"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var queue: String
        public static let fieldNames: Set<String> = ["queue"]
        public init(queue: String) { self.queue = queue }
        public func validate() throws(RPCErrorObject) { try Names.checkQueue(queue, field: "queue") }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var queue: String
        public var paused: Bool

        public init(queue: String, paused: Bool) {
            self.queue = queue
            self.paused = paused
        }
    }
}

/// `queues.resume`: a paused queue hands out jobs again; waiting workers wake at once.
public enum QueuesResume: RPCMethod {
    public static let name = "queues.resume"
    public typealias Params = QueuesPause.Params
    public typealias Result = QueuesPause.Result
}

/// `queues.list`: every queue that has jobs or is paused, with its counts, latency and whether it is paused.
public enum QueuesList: RPCMethod {
    public static let name = "queues.list"
    public typealias Params = NoParams

    public struct Result: Codable, Sendable, Hashable {
        public var queues: [String: Stats.QueueStats]
        public init(queues: [String: Stats.QueueStats]) { self.queues = queues }
    }
}
