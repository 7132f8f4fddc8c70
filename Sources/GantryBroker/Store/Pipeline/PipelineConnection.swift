import CLibPQ
import Foundation
import Logging
import Synchronization

/// One libpq connection in pipeline mode, driven by a thread of its own: requests queue up from any task, the
/// thread sends whatever has queued in one write, and hands each result back as it arrives. Each statement is
/// followed by its own Sync, so it is its own transaction (one failing leaves the others alone) and its answer
/// comes only after PostgreSQL has committed it: the Sync's ReadyForQuery follows the commit.
///
/// Why not PostgresNIO here: on a one-row prepared SELECT it costs this process about ten times libpq's CPU
/// (measured on this machine; see the README's Performance section), and these statements run on every request.
final class PipelineConnection: @unchecked Sendable {
    struct Request {
        var statement: String
        var parameters: [String?]
        var continuation: CheckedContinuation<PipelineRows, any Error>
    }

    private struct Queue {
        var waiting: [Request] = []
        /// The thread is in (or about to enter) `poll` and must be woken for new work.
        var threadSleeping = false
        var closing = false
    }

    /// A statement sent and not yet answered: its result (or error) is kept until its Sync arrives.
    private struct InFlight {
        var continuation: CheckedContinuation<PipelineRows, any Error>
        var rows: PipelineRows?
        var error: (any Error)?
        var resultsDone = false
    }

    private let parameters: [(String, String)]
    private let statements: [(name: String, sql: String)]
    private let logger: Logger
    private let queue = Mutex(Queue())
    private let wakeDescriptor: Int32
    /// Statements queued or in flight on this connection, for the pool's choice of the least busy one.
    let load = Atomic<Int>(0)
    /// Whether the thread has ended, and who waits for it to.
    private let ending = Mutex<(exited: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    // Touched only by the connection's thread.
    private var connection: OpaquePointer?
    private var inFlight: [InFlight] = []
    private var inFlightStart = 0

    init(parameters: [(String, String)], statements: [(name: String, sql: String)], logger: Logger) {
        self.parameters = parameters
        self.statements = statements
        self.logger = logger
        wakeDescriptor = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        let thread = Thread { [self] in run() }
        thread.name = "gantry-pipeline"
        thread.start()
    }

    /// Runs a prepared statement; answers once it has committed.
    func execute(_ statement: String, _ parameters: [String?]) async throws -> PipelineRows {
        load.add(1, ordering: .relaxed)
        defer { load.subtract(1, ordering: .relaxed) }
        return try await withCheckedThrowingContinuation { continuation in
            let (wake, refused) = queue.withLock { queue -> (Bool, Bool) in
                guard !queue.closing else { return (false, true) }
                queue.waiting.append(Request(statement: statement, parameters: parameters, continuation: continuation))
                guard queue.threadSleeping else { return (false, false) }
                queue.threadSleeping = false
                return (true, false)
            }
            if refused { continuation.resume(throwing: PipelineError.closed) }
            if wake { signal() }
        }
    }

    /// Lets what is in flight finish, then closes the connection and ends the thread.
    func close() async {
        await withCheckedContinuation { continuation in
            let exited = ending.withLock { ending -> Bool in
                if !ending.exited { ending.waiters.append(continuation) }
                return ending.exited
            }
            if exited { return continuation.resume() }
            queue.withLock { $0.closing = true; $0.threadSleeping = false }
            signal()
        }
    }

    private func signal() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeDescriptor, &one, 8)
    }

    // MARK: the thread

    private func run() {
        while true {
            let (taken, closing) = queue.withLock { queue -> ([Request], Bool) in
                defer { queue.waiting.removeAll(keepingCapacity: true) }
                return (queue.waiting, queue.closing)
            }
            if !taken.isEmpty { send(taken) }
            if closing && taken.isEmpty && pendingCount == 0 { break }
            var wantsWrite = false
            if let connection, PQflush(connection) == 1 { wantsWrite = true }
            // Sleep only when nothing came in since the queue was last looked at.
            let sleep = queue.withLock { queue -> Bool in
                guard queue.waiting.isEmpty, !queue.closing || pendingCount > 0 else { return false }
                queue.threadSleeping = true
                return true
            }
            guard sleep || pendingCount > 0 || wantsWrite else { continue }
            var descriptors = [pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0)]
            // Watched while idle too, so a connection PostgreSQL closed is dropped before the next request meets it.
            if let connection {
                descriptors.append(pollfd(fd: PQsocket(connection), events: Int16(POLLIN) | (wantsWrite ? Int16(POLLOUT) : 0), revents: 0))
            }
            let ready = poll(&descriptors, nfds_t(descriptors.count), sleep ? -1 : 0)
            queue.withLock { $0.threadSleeping = false }
            guard ready > 0 else { continue }
            if descriptors[0].revents != 0 {
                var count: UInt64 = 0
                _ = Glibc.read(wakeDescriptor, &count, 8)
            }
            if descriptors.count > 1, descriptors[1].revents != 0 { receive() }
        }
        if let connection { PQfinish(connection) }
        connection = nil
        Glibc.close(wakeDescriptor)
        let waiters = ending.withLock { ending in
            ending.exited = true
            defer { ending.waiters.removeAll() }
            return ending.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private var pendingCount: Int { inFlight.count - inFlightStart }

    private func send(_ requests: [Request]) {
        if connection == nil {
            do { connection = try connect() } catch {
                for request in requests { request.continuation.resume(throwing: error) }
                return
            }
        }
        guard let connection else { return }
        for (position, request) in requests.enumerated() {
            let sent = withCStrings(request.parameters) { values in
                PQsendQueryPrepared(connection, request.statement, Int32(values.count), values, nil, nil, 1) == 1
                    && PQpipelineSync(connection) == 1
            }
            guard sent else {
                // The connection broke while sending: this one and those in flight may or may not have reached
                // PostgreSQL; the rest of the batch was never sent, so may safely be retried.
                let reason = lastError(connection)
                request.continuation.resume(throwing: PipelineError.connectionLost(reason))
                for unsent in requests[(position + 1)...] { unsent.continuation.resume(throwing: PipelineError.unavailable(reason)) }
                lose(connection, reason: reason)
                return
            }
            inFlight.append(InFlight(continuation: request.continuation))
        }
    }

    /// Reads whatever arrived and answers every statement whose Sync came.
    private func receive() {
        guard let connection else { return }
        guard PQconsumeInput(connection) == 1 else {
            lose(connection, reason: lastError(connection))
            return
        }
        while PQisBusy(connection) == 0, inFlightStart < inFlight.count {
            let result = PQgetResult(connection)
            guard let result else {
                // The end of one statement's results; its Sync comes next.
                if inFlight[inFlightStart].rows != nil || inFlight[inFlightStart].error != nil, !inFlight[inFlightStart].resultsDone {
                    inFlight[inFlightStart].resultsDone = true
                    continue
                }
                break
            }
            switch PQresultStatus(result) {
            case PGRES_PIPELINE_SYNC:
                PQclear(result)
                let done = inFlight[inFlightStart]
                inFlight[inFlightStart] = InFlight(continuation: done.continuation, resultsDone: true)
                inFlightStart += 1
                if let error = done.error {
                    done.continuation.resume(throwing: error)
                } else {
                    done.continuation.resume(returning: done.rows ?? PipelineRows(nil))
                }
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
                inFlight[inFlightStart].rows = PipelineRows(result)
            case PGRES_PIPELINE_ABORTED:
                PQclear(result)
                inFlight[inFlightStart].error = PipelineError.aborted
            default:
                inFlight[inFlightStart].error = PipelineError.statementFailed(PostgresRefusal(result))
                PQclear(result)
            }
        }
        if inFlightStart == inFlight.count {
            inFlight.removeAll(keepingCapacity: true)
            inFlightStart = 0
        }
        if PQstatus(connection) == CONNECTION_BAD { lose(connection, reason: lastError(connection)) }
    }

    /// The connection broke: whatever was in flight may or may not have committed; its callers are told so.
    private func lose(_ broken: OpaquePointer, reason: String) {
        logger.warning("a pipelined PostgreSQL connection was lost", metadata: ["reason": "\(reason)"])
        for entry in inFlight[inFlightStart...] { entry.continuation.resume(throwing: PipelineError.connectionLost(reason)) }
        inFlight.removeAll()
        inFlightStart = 0
        PQfinish(broken)
        connection = nil
    }

    private func connect() throws(PipelineError) -> OpaquePointer {
        let keywords = parameters.map(\.0)
        let values = parameters.map(\.1)
        let connection = withNullTerminatedCStrings(keywords) { keywords in
            withNullTerminatedCStrings(values) { values in PQconnectdbParams(keywords, values, 1) }
        }
        guard let connection else { throw .unavailable("libpq could not allocate a connection") }
        guard PQstatus(connection) == CONNECTION_OK else {
            let reason = lastError(connection)
            PQfinish(connection)
            throw .unavailable(reason)
        }
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        for statement in statements {
            let prepared = PQprepare(connection, statement.name, statement.sql, 0, nil)
            let status = PQresultStatus(prepared)
            let refusal = status == PGRES_COMMAND_OK ? nil : PostgresRefusal(prepared)
            PQclear(prepared)
            if let refusal {
                PQfinish(connection)
                throw .statementFailed(refusal)
            }
        }
        guard PQsetnonblocking(connection, 1) == 0, PQenterPipelineMode(connection) == 1 else {
            let reason = lastError(connection)
            PQfinish(connection)
            throw .unavailable(reason)
        }
        return connection
    }

    private func lastError(_ connection: OpaquePointer) -> String {
        String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Runs `body` with the strings as a C array of NUL-terminated strings (nil for SQL NULL), valid only inside it.
func withCStrings<Value>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> Value) -> Value {
    var copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } }
    defer { for copy in copies { free(copy) } }
    return copies.withUnsafeMutableBufferPointer { buffer in
        body(buffer.map { UnsafePointer($0) })
    }
}

/// The same, with a nil after the last, as libpq's keyword and value lists end.
func withNullTerminatedCStrings<Value>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> Value) -> Value {
    withCStrings(strings.map { Optional($0) }) { pointers in
        body(pointers + [nil])
    }
}
