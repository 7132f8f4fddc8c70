import Foundation
import GantryProtocol
import Logging
import NIOCore
import NIOFoundationCompat
import NIOSSL
import Synchronization

/// A thin client for a Gantry broker: one pipelined connection shared by every task that uses the client,
/// re-opened with backoff when it drops. Failed calls throw `RPCErrorObject` (the broker's code, message and
/// data) or `ConnectionLost`.
///
/// ```swift
/// let gantry = try GantryClient(url: "gantry://127.0.0.1:7440", name: "billing")
/// let id = try await gantry.enqueue("email.send", args: Email(to: "ana@example.com"), options: .init(queue: "mail"))
/// ```
public final class GantryClient: Sendable {
    public let host: String
    public let port: Int
    let name: String
    let worker: Hello.Worker?
    let token: String?
    let logger: Logger
    let patience: Duration
    /// Run around every enqueue this client makes (single or batch).
    public let hooks: Hooks
    private let connector: Connector
    private let nextID = Atomic<Int64>(0)

    public struct InvalidURL: Error, CustomStringConvertible {
        public let description: String
    }

    /// - Parameters:
    ///   - url: `gantry://host:port`, `gantrys://host:port` (TLS), or just `host:port` (default port 7440); a
    ///     token may stand before the host (`gantrys://TOKEN@host:port`).
    ///   - name: how operators see this client in the broker's logs.
    ///   - worker: what a worker announces in `hello` (the `Worker` fills it in).
    ///   - token: the token sent in `hello` (wins over one in the URL).
    ///   - tls: how to check the broker's certificate and which certificate to show it; TLS is on when this is
    ///     given or the URL is `gantrys://`.
    ///   - patience: how long to keep trying to (re)connect before a call fails with `ConnectionLost`, and to
    ///     resend a request the broker refused with `storage_unavailable` having changed nothing; a restarting
    ///     broker or database is back within seconds. Zero tries once (for command-line tools).
    ///   - hooks: run around every enqueue (`Hooks`).
    ///   - onNotification: called with the method of each notification the broker sends (`worker.quiet`,
    ///     `worker.stop`).
    public init(url: String = "gantry://127.0.0.1:7440", name: String = "gantry-swift", worker: Hello.Worker? = nil,
                token: String? = nil, tls: ClientTLS? = nil,
                patience: Duration = .seconds(30), logger: Logger = Logger(label: "gantry.client"), hooks: Hooks = Hooks(),
                onNotification: @escaping @Sendable (String) -> Void = { _ in }) throws {
        let address = try BrokerURL(url)
        self.host = address.host
        self.port = address.port
        self.name = name
        self.worker = worker
        self.token = token ?? address.token
        self.logger = logger
        self.patience = patience
        self.hooks = hooks
        let tlsContext = try (tls ?? (address.tls ? ClientTLS() : nil)).map { try $0.makeContext() }
        self.connector = Connector(
            host: address.host, port: address.port, tls: tlsContext, patience: patience, logger: logger, onNotification: onNotification)
    }

    /// Reads `gantry://host:port` or `host:port` (default port 7440).
    public static func address(of url: String) throws -> (host: String, port: Int) {
        let address = try BrokerURL(url)
        return (address.host, address.port)
    }

    // MARK: typed calls

    /// Calls a method with its typed params and returns its typed result.
    public func call<Method: RPCMethod>(_ method: Method.Type, _ params: Method.Params) async throws -> Method.Result {
        let result = try await send(method: Method.name, params: try GantryJSON.makeEncoder().encode(params))
        return try JSONValueDecoder.decode(Method.Result.self, from: result)
    }

    /// Calls any method by name, for what has no typed wrapper.
    public func call(method: String, params: JSONValue? = nil) async throws -> JSONValue {
        try await send(method: method, params: params.map { try GantryJSON.makeEncoder().encode($0) })
    }

    /// Enqueues one job; returns its id once the broker has committed it.
    @discardableResult
    public func enqueue<Args: Encodable>(_ type: String, args: Args, options: EnqueueOptions = EnqueueOptions()) async throws -> String {
        try await enqueue(options.params(type: type, args: try Self.json(args)))
    }

    /// Enqueues one job as given (through the hooks and with the current trace, as every enqueue).
    @discardableResult
    public func enqueue(_ params: Enqueue.Params) async throws -> String {
        let ids = try await hooks.enqueue([TraceContext.stamped(params)]) { jobs in
            guard jobs.count == 1 else { throw HookMisuse(description: "a beforeEnqueue hook turned one job into \(jobs.count); return the jobs it was given (changed or not), one for one") }
            return [try await self.call(Enqueue.self, jobs[0]).id]
        }
        guard let id = ids.first else { throw HookMisuse(description: "an aroundEnqueue hook answered no id; return what its next step returned") }
        return id
    }

    /// Enqueues all the jobs or none; returns their ids in order.
    @discardableResult
    public func enqueueBatch(_ jobs: [Enqueue.Params]) async throws -> [String] {
        try await hooks.enqueue(jobs.map(TraceContext.stamped)) { jobs in try await self.call(EnqueueBatch.self, EnqueueBatch.Params(jobs: jobs)).ids }
    }

    /// The whole job: state, attempts, errors, result.
    public func job(id: String) async throws -> Job {
        try await call(JobsGet.self, JobsGet.Params(id: id))
    }

    /// Starts an operation at the first step of `main`; with `key`, starting it again answers the same one.
    @discardableResult
    public func startOperation(_ name: String, branches: JSONValue, globals: JSONObject = [:], queue: String = ProtocolDefaults.queue,
                               key: String? = nil) async throws -> OperationsStart.Result {
        try await call(OperationsStart.self, OperationsStart.Params(name: name, globals: .object(globals), branches: branches, queue: queue, key: key))
    }

    /// The operation with its plan and every step.
    public func operation(id: String) async throws -> OperationRecord {
        try await call(OperationsGet.self, OperationIDParams(id: id))
    }

    public func listOperations(_ params: OperationsList.Params = OperationsList.Params()) async throws -> OperationsList.Result {
        try await call(OperationsList.self, params)
    }

    @discardableResult
    public func retryOperation(id: String, from: OperationsRetry.From = .failed) async throws -> OperationsRetry.Result {
        try await call(OperationsRetry.self, OperationsRetry.Params(id: id, from: from))
    }

    @discardableResult
    public func cancelOperation(id: String) async throws -> OperationsCancel.Result {
        try await call(OperationsCancel.self, OperationIDParams(id: id))
    }

    /// Publishes an event: every matching subscription starts its job or operation in the same commit. With
    /// `key`, publishing the same key again within a day answers the first event and starts nothing.
    @discardableResult
    public func publish(_ type: String, payload: JSONValue = [:], key: String? = nil) async throws -> EventsPublish.Result {
        try await call(EventsPublish.self, EventsPublish.Params(type: type, payload: payload, key: key))
    }

    /// Starts an execution of a package by hand; `config` overrides keys of its config for this run.
    @discardableResult
    public func runPackage(_ name: String, config: JSONObject? = nil) async throws -> PackagesRun.Result {
        try await call(PackagesRun.self, PackagesRun.Params(name: name, config: config.map(JSONValue.object)))
    }

    /// A package's executions, newest first, each with its steps' states and results.
    public func executions(ofPackage name: String, limit: Int = 20, cursor: String? = nil) async throws -> PackagesExecutions.Result {
        try await call(PackagesExecutions.self, PackagesExecutions.Params(name: name, limit: limit, cursor: cursor))
    }

    public func stats() async throws -> Stats.Result {
        try await call(Stats.self, NoParams())
    }

    /// Closes the connection; the next call opens a new one.
    public func close() async {
        await connector.close()
    }

    static func json<Value: Encodable>(_ value: Value) throws -> JSONValue {
        try JSONValueEncoder.encode(value)
    }

    // MARK: the wire

    /// Sends the request; resends it (with backoff, within `patience`) while the broker says PostgreSQL is away
    /// and nothing was applied, so a short database outage is a delay, not an error, for the caller.
    private func send(method: String, params: Data?) async throws -> JSONValue {
        let deadline = ContinuousClock.now + patience
        var backoff = Backoff(maximum: .seconds(2))
        while true {
            do {
                return try await sendOnce(method: method, params: params)
            } catch let error as RPCErrorObject where error.code == GantryErrorCode.storageUnavailable.rawValue
                        && error.data?["applied"] == false && ContinuousClock.now + backoff.upcoming < deadline {
                logger.info("the broker cannot reach PostgreSQL; resending", metadata: ["method": "\(method)", "in": "\(backoff.upcoming)"])
                try await Task.sleep(for: backoff.next())
            }
        }
    }

    private func sendOnce(method: String, params: Data?) async throws -> JSONValue {
        let connection = try await connector.connection { connection in
            // Each new connection starts with hello, so the broker knows who this is (and a worker's handlers).
            let hello = Hello.Params(client: self.name, token: self.token, worker: self.worker)
            let response = try await self.exchange(on: connection, method: Hello.name, params: try GantryJSON.makeEncoder().encode(hello))
            if let error = response.error { throw error }
        }
        let response = try await exchange(on: connection, method: method, params: params)
        if let error = response.error { throw error }
        return response.result ?? .null
    }

    private func exchange(on connection: ClientConnection, method: String, params: Data?) async throws -> RPCResponse {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        var line = ByteBuffer()
        line.writeString(#"{"jsonrpc":"2.0","id":\#(id),"method":"#)
        line.writeBytes(try JSONEncoder().encode(method))
        if let params {
            line.writeString(#","params":"#)
            line.writeBytes(params)
        }
        line.writeString("}\n")
        return try await connection.send(id: id, line: line)
    }
}

/// Opens the connection when first needed and again after it drops, backing off while the broker is away.
actor Connector {
    let host: String
    let port: Int
    let tls: NIOSSLContext?
    let patience: Duration
    let logger: Logger
    let onNotification: @Sendable (String) -> Void
    private var current: ClientConnection?
    private var opening: Task<ClientConnection, any Error>?

    init(host: String, port: Int, tls: NIOSSLContext?, patience: Duration, logger: Logger, onNotification: @escaping @Sendable (String) -> Void) {
        self.host = host
        self.port = port
        self.tls = tls
        self.patience = patience
        self.logger = logger
        self.onNotification = onNotification
    }

    func connection(greet: @escaping @Sendable (ClientConnection) async throws -> Void) async throws -> ClientConnection {
        if let current, current.isActive { return current }
        if let opening { return try await opening.value }
        let (host, port, tls, patience, logger, onNotification) = (host, port, tls, patience, logger, onNotification)
        let task = Task<ClientConnection, any Error> {
            let deadline = ContinuousClock.now + patience
            var backoff = Backoff(maximum: .seconds(5))
            while true {
                do {
                    let connection = try await ClientConnection.connect(
                        host: host, port: port, tls: tls, maxLineBytes: 64 << 20, onNotification: onNotification)
                    try await greet(connection)
                    return connection
                } catch let error as RPCErrorObject {
                    throw error
                } catch let error as TLSFailure {
                    // A certificate that is not trusted now will not be trusted in a second either.
                    throw error
                } catch {
                    guard ContinuousClock.now + backoff.upcoming < deadline else {
                        throw ConnectionLost(description: "cannot reach the broker at \(host):\(port) (\(error)); is gantryd running there?")
                    }
                    logger.info("broker unreachable; retrying", metadata: ["address": "\(host):\(port)", "in": "\(backoff.upcoming)"])
                    try await Task.sleep(for: backoff.next())
                }
            }
        }
        opening = task
        defer { opening = nil }
        let connection = try await task.value
        current = connection
        return connection
    }

    func close() {
        current?.close()
        current = nil
    }
}

/// How to enqueue a job, beyond its type and args. Unset fields take the broker's defaults.
public struct EnqueueOptions: Sendable {
    public var queue: String
    public var priority: Int
    public var runAt: Date?
    public var delay: Duration?
    public var maxAttempts: Int
    public var timeout: Duration?
    public var expiresAt: Date?
    public var queueTimeout: Duration?
    public var uniqueKey: String?
    public var tags: [String]
    public var meta: JSONObject

    public init(queue: String = ProtocolDefaults.queue, priority: Int = ProtocolDefaults.priority, runAt: Date? = nil,
                delay: Duration? = nil, maxAttempts: Int = ProtocolDefaults.maxAttempts, timeout: Duration? = nil,
                expiresAt: Date? = nil, queueTimeout: Duration? = nil, uniqueKey: String? = nil, tags: [String] = [],
                meta: JSONObject = [:]) {
        self.queue = queue
        self.priority = priority
        self.runAt = runAt
        self.delay = delay
        self.maxAttempts = maxAttempts
        self.timeout = timeout
        self.expiresAt = expiresAt
        self.queueTimeout = queueTimeout
        self.uniqueKey = uniqueKey
        self.tags = tags
        self.meta = meta
    }

    public func params(type: String, args: JSONValue) -> Enqueue.Params {
        Enqueue.Params(
            type: type, args: args, queue: queue, priority: priority, runAt: runAt, delayMs: delay.map(Self.milliseconds),
            maxAttempts: maxAttempts, timeoutMs: timeout.map(Self.milliseconds), expiresAt: expiresAt,
            queueTimeoutMs: queueTimeout.map(Self.milliseconds), uniqueKey: uniqueKey, tags: tags, meta: .object(meta))
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        TimeAmount(duration).nanoseconds / 1_000_000
    }
}

/// A hook broke the contract of its kind (the description says how).
public struct HookMisuse: Error, CustomStringConvertible {
    public let description: String
}
