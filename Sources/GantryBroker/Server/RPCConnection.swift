import Foundation
import GantryProtocol
import Logging
import CoreMetrics
import NIOCore
import NIOExtras
import NIOFoundationCompat

/// Serves one client: reads lines, runs each request in its own task (so a long-polling `reserve` never holds
/// up an `ack` behind it, and a batch's requests run at once), and writes each answer as soon as it is ready. A
/// request counts as in flight until its answer is written, so a client that sends without reading is slowed
/// down, not buffered for. Nothing a client sends ends the broker; only an oversize line ends the connection.
struct RPCConnection {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    let broker: Broker
    let session: Session
    /// The client's IP address, for the per-address connection limit.
    let address: String
    let registry: ConnectionRegistry
    let logger: Logger

    func run() async {
        let configuration = broker.configuration
        if let refusal = registry.opened(
            session, channel: channel.channel, address: address,
            maxTotal: configuration.maxConnections, maxPerAddress: configuration.maxConnectionsPerAddress) {
            await turnAway(refusal)
            return
        }
        broker.sessionOpened(session)
        do {
            try await channel.executeThenClose { inbound, outbound in
                let answers = AnswerWriter(outbound: outbound)
                let channel = channel.channel
                session.attach(SessionLink(send: { await answers.write($0) }, disconnect: { channel.close(promise: nil) }))
                await readRequests(inbound, answers: answers)
            }
        } catch {
            logger.debug("connection ended", metadata: ["session": "\(session.id)", "error": "\(error)"])
        }
        registry.closed(session.id)
        await broker.sessionClosed(session)
    }

    /// A connection beyond the limits hears why, once, and is closed.
    private func turnAway(_ reason: String) async {
        logger.warning("turned a connection away", metadata: ["peer": "\(session.peer)", "reason": "\(reason)"])
        broker.metrics.connectionsRefused.increment()
        try? await channel.executeThenClose { _, outbound in
            await AnswerWriter(outbound: outbound).write(ResponseLine.failure(RPCErrorResponse(id: nil, error: .tooManyConnections(reason))))
        }
    }

    /// Reads until the client closes or sends an oversize line; returns once every started request has answered.
    private func readRequests(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>, answers: AnswerWriter) async {
        await withTaskGroup(of: Void.self) { requests in
            var inFlight = 0
            do {
                for try await line in inbound {
                    if inFlight >= broker.configuration.maxInFlightPerConnection {
                        // Back-pressure: stop reading until one request finishes; TCP does the rest.
                        await requests.next()
                        inFlight -= 1
                    }
                    inFlight += 1
                    // The decoder only bounds a line still incomplete; one that arrived whole is checked here.
                    guard line.readableBytes <= broker.configuration.maxLineBytes else {
                        throw ByteToMessageDecoderError.PayloadTooLargeError()
                    }
                    let data = Data(buffer: line)
                    registry.startedRequest(session.id)
                    requests.addTask {
                        await handleLine(data, answers: answers)
                        registry.finishedRequest(session.id)
                    }
                }
            } catch is ByteToMessageDecoderError.PayloadTooLargeError {
                logger.warning("closing connection after an oversize line", metadata: ["session": "\(session.id)", "peer": "\(session.peer)"])
                await answers.write(ResponseLine.failure(RPCErrorResponse(id: nil, error: .payloadTooLarge(limit: broker.configuration.maxLineBytes))))
                // Close our side first and let the rest of the line arrive (it is dropped) before closing for good:
                // closing with unread input would reset the connection and could destroy the error before the
                // client reads it.
                try? await channel.channel.close(mode: .output)
                try? await Task.sleep(for: .seconds(1))
            } catch let leftover as NIOExtrasErrors.LeftOverBytesError {
                // The client closed mid-line: treat what it sent as its last line.
                let data = Data(buffer: leftover.leftOverBytes)
                requests.addTask { await handleLine(data, answers: answers) }
            } catch {
                logger.debug("read failed", metadata: ["session": "\(session.id)", "error": "\(error)"])
            }
            // The client is gone or done sending: no reserve should keep waiting for it.
            for ticket in session.update({ $0.beginClosing() }) { broker.parkedReserves.remove(ticket) }
            await requests.waitForAll()
        }
    }

    private func handleLine(_ data: Data, answers: AnswerWriter) async {
        switch LineFraming.parse(data) {
        case .blank:
            return
        case .unusable(let error):
            await answers.write(ResponseLine.failure(error))
        case .single(let request):
            if let answer = await answer(request) { await answers.write(answer) }
        case .batch(let requests):
            if let line = ResponseLine.batch(await answerTogether(requests)) { await answers.write(line) }
        }
        if session.update({ $0.mustCloseAfterAnswer }) {
            // As after an oversize line: our side first, so the answer is read before the connection goes.
            try? await channel.channel.close(mode: .output)
            try? await Task.sleep(for: .milliseconds(200))
            try? await channel.channel.close()
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

/// Writes answer lines; any request task may write, and a write waits while the client is not reading.
struct AnswerWriter: Sendable {
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    func write(_ answer: Data) async {
        var buffer = ByteBuffer(bytes: answer)
        buffer.writeInteger(LineFraming.newline)
        // A failed write means the client is gone; reading stops on its own.
        try? await outbound.write(buffer)
    }
}
