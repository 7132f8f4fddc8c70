import CoreMetrics
import Foundation
import GantryProtocol
import Logging
import NIOCore
import NIOExtras
import NIOFoundationCompat

/// Serves one client, as a handler on its channel's event loop: each line read starts a task of its own (so a
/// long-polling `reserve` never holds up an `ack` behind it, and a batch's requests run at once) and its answer
/// is written back on the event loop the moment it is ready. A request counts as in flight until its answer is
/// written; past `maxInFlightPerConnection`, lines wait unread and the connection stops reading, so a client that
/// sends without reading is slowed down, not buffered for. Nothing a client sends ends the broker; only an
/// oversize line ends the connection.
///
/// A handler rather than an `NIOAsyncChannel` with a reading task: the async sequences between the socket and
/// the tasks cost about twenty executor hops per request (callgrind), more than the rest of a `jobs.get`.
final class RPCConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let broker: Broker
    private let registry: ConnectionRegistry
    private let logger: Logger

    private var session: Session?
    private var context: ChannelHandlerContext?
    private var inFlight = 0
    /// Lines read beyond the in-flight limit, started as earlier requests finish.
    private var waiting = CircularBuffer<ByteBuffer>()
    private var readingPaused = false
    /// The client will send nothing more (it closed its side, or we closed our input): lines already read
    /// still run, then the connection closes.
    private var doneReading = false
    private var channelClosed = false
    private var finished = false
    /// An oversize line's error is on its way: the connection closes on its own schedule, not when idle.
    private var refusedOversizeLine = false

    init(broker: Broker, registry: ConnectionRegistry, logger: Logger) {
        self.broker = broker
        self.registry = registry
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        let session = Session(peer: channel.remoteAddress.map { "\(address):\($0.port ?? 0)" } ?? "unknown")
        let configuration = broker.configuration
        if let refusal = registry.opened(
            session, channel: channel, address: address,
            maxTotal: configuration.maxConnections, maxPerAddress: configuration.maxConnectionsPerAddress) {
            turnAway(refusal, session: session, context: context)
            return
        }
        self.session = session
        broker.sessionOpened(session)
        let answers = AnswerWriter(channel: channel)
        session.attach(SessionLink(send: { await answers.write($0) }, disconnect: { channel.close(promise: nil) }))
        context.fireChannelActive()
    }

    /// A connection beyond the limits hears why, once, and is closed.
    private func turnAway(_ reason: String, session: Session, context: ChannelHandlerContext) {
        logger.warning("turned a connection away", metadata: ["peer": "\(session.peer)", "reason": "\(reason)"])
        broker.metrics.connectionsRefused.increment()
        doneReading = true
        finished = true
        let channel = context.channel
        let line = ResponseLine.failure(RPCErrorResponse(id: nil, error: .tooManyConnections(reason)))
        context.writeAndFlush(wrapOutboundOut(AnswerWriter.buffer(line, allocator: channel.allocator))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard session != nil, !doneReading else { return }
        let line = unwrapInboundIn(data)
        // The decoder only bounds a line still incomplete; one that arrived whole is checked here.
        guard line.readableBytes <= broker.configuration.maxLineBytes else {
            refuseOversizeLine(context: context)
            return
        }
        accept(line, context: context)
    }

    /// Starts the line's request, or keeps it (and stops reading) while the connection is at its in-flight limit.
    private func accept(_ line: ByteBuffer, context: ChannelHandlerContext) {
        guard inFlight < broker.configuration.maxInFlightPerConnection, waiting.isEmpty else {
            waiting.append(line)
            pauseReading(context: context)
            return
        }
        start(line, context: context)
    }

    private func start(_ line: ByteBuffer, context: ChannelHandlerContext) {
        guard let session else { return }
        inFlight += 1
        registry.startedRequest(session.id)
        let request = RequestRunner(broker: broker, session: session)
        let data = Data(buffer: line)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        Task {
            let answer = await request.answer(line: data)
            let closeAfter = session.update { $0.mustCloseAfterAnswer }
            handler.eventLoop.execute { handler.value.answered(answer, closeAfter: closeAfter) }
        }
    }

    /// Back on the event loop with a request's answer: writes it, and once written the request is done.
    private func answered(_ answer: Data?, closeAfter: Bool) {
        guard let context, let answer, !channelClosed else {
            requestFinished()
            return
        }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(AnswerWriter.buffer(answer, allocator: channel.allocator))).whenComplete { _ in
            handler.value.requestFinished()
            if closeAfter {
                // As after an oversize line: our side first, so the answer is read before the connection goes.
                channel.close(mode: .output, promise: nil)
                channel.eventLoop.scheduleTask(in: .milliseconds(200)) { channel.close(promise: nil) }
            }
        }
    }

    private func requestFinished() {
        inFlight -= 1
        if let session { registry.finishedRequest(session.id) }
        if let context {
            while inFlight < broker.configuration.maxInFlightPerConnection, let next = waiting.popFirst() { start(next, context: context) }
            if readingPaused, waiting.isEmpty, !doneReading {
                readingPaused = false
                context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            }
        }
        closeWhenDone()
    }

    private func pauseReading(context: ChannelHandlerContext) {
        guard !readingPaused else { return }
        readingPaused = true
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent { clientDoneSending() }
        context.fireUserInboundEventTriggered(event)
    }

    /// The client is gone or done sending: no reserve should keep waiting for it; what it sent still runs.
    private func clientDoneSending() {
        guard !doneReading else { return }
        doneReading = true
        if let session {
            for ticket in session.update({ $0.beginClosing() }) { broker.parkedReserves.remove(ticket) }
        }
        closeWhenDone()
    }

    /// Everything read has been answered and nothing more will come: close, then close the session down.
    private func closeWhenDone() {
        guard doneReading, inFlight == 0, waiting.isEmpty else { return }
        if !channelClosed, !refusedOversizeLine { context?.close(promise: nil) }
        guard channelClosed, !finished, let session else { return }
        finished = true
        let (broker, registry) = (broker, registry)
        Task {
            await broker.sessionClosed(session)
            registry.closed(session.id)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        channelClosed = true
        clientDoneSending()
        closeWhenDone()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case is ByteToMessageDecoderError.PayloadTooLargeError:
            refuseOversizeLine(context: context)
        case let leftover as NIOExtrasErrors.LeftOverBytesError:
            // The client closed mid-line: treat what it sent as its last line.
            if session != nil, !doneReading { accept(leftover.leftOverBytes, context: context) }
        default:
            logger.debug("read failed", metadata: ["session": "\(session?.id.uuidString ?? "-")", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    private func refuseOversizeLine(context: ChannelHandlerContext) {
        guard let session, !doneReading else { return }
        logger.warning("closing connection after an oversize line", metadata: ["session": "\(session.id)", "peer": "\(session.peer)"])
        refusedOversizeLine = true
        clientDoneSending()
        waiting.removeAll()
        let channel = context.channel
        let line = ResponseLine.failure(RPCErrorResponse(id: nil, error: .payloadTooLarge(limit: broker.configuration.maxLineBytes)))
        // Close our side first and let the rest of the line arrive (it is dropped) before closing for good: closing
        // with unread input would reset the connection and could destroy the error before the client reads it.
        context.writeAndFlush(wrapOutboundOut(AnswerWriter.buffer(line, allocator: channel.allocator))).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
            channel.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
        }
    }
}

/// Answers one line's requests, off the event loop.
struct RequestRunner: Sendable {
    let broker: Broker
    let session: Session

    /// The answer line (without its newline); nil when there is nothing to answer (blank lines, notifications).
    func answer(line: Data) async -> Data? {
        switch LineFraming.parse(line) {
        case .blank:
            return nil
        case .unusable(let error):
            return ResponseLine.failure(error)
        case .single(let request):
            return await answer(request)
        case .batch(let requests):
            return ResponseLine.batch(await answerTogether(requests))
        }
    }

    /// A batch's requests run at once (JSON-RPC leaves their order to the server), so a batch of acks or
    /// enqueues shares statements and commits; `hello`s run first, one by one, so a batch that opens with its
    /// hello is authenticated for the rest. Answers keep the requests' order.
    private func answerTogether(_ requests: [Result<RPCRequest, RPCErrorResponse>]) async -> [Data] {
        func isHello(_ request: Result<RPCRequest, RPCErrorResponse>) -> Bool {
            (try? request.get().method) == Hello.name
        }
        var answered = [Data?](repeating: nil, count: requests.count)
        for (index, request) in requests.enumerated() where isHello(request) {
            answered[index] = await answer(request)
        }
        await withTaskGroup(of: (Int, Data?).self) { group in
            for (index, request) in requests.enumerated() where !isHello(request) {
                group.addTask { (index, await answer(request)) }
            }
            for await (index, answer) in group { answered[index] = answer }
        }
        return answered.compactMap { $0 }
    }

    private func answer(_ parsed: Result<RPCRequest, RPCErrorResponse>) async -> Data? {
        switch parsed {
        case .failure(let error):
            return ResponseLine.failure(error)
        case .success(let request):
            let outcome = await broker.handle(request, session: session)
            guard let id = request.id else { return nil }
            return ResponseLine.answer(id: id, outcome)
        }
    }
}

/// Writes lines the broker sends on its own (notifications, events); a write waits while the client is not reading.
struct AnswerWriter: Sendable {
    let channel: any Channel

    func write(_ answer: Data) async {
        // A failed write means the client is gone; reading stops on its own.
        try? await channel.writeAndFlush(Self.buffer(answer, allocator: channel.allocator)).get()
    }

    static func buffer(_ answer: Data, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: answer.count + 1)
        buffer.writeBytes(answer)
        buffer.writeInteger(LineFraming.newline)
        return buffer
    }
}
