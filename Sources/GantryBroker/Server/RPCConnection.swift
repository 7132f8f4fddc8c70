import Foundation
import GantryProtocol
import Logging
import NIOCore
import NIOExtras
import NIOFoundationCompat

/// Serves one client: reads lines, runs each request in its own task (so a long-polling `reserve` never holds
/// up an `ack` behind it), and writes each answer as soon as it is ready. Nothing a client sends ends the
/// broker; only an oversize line ends the connection.
struct RPCConnection {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    let broker: Broker
    let session: Session
    let registry: ConnectionRegistry
    let logger: Logger

    func run() async {
        broker.sessionOpened(session)
        registry.opened(session, channel: channel.channel)
        do {
            try await channel.executeThenClose { inbound, outbound in
                let (answers, answerSink) = AsyncStream.makeStream(of: Data.self)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await answer in answers {
                            var buffer = ByteBuffer(bytes: answer)
                            buffer.writeInteger(LineFraming.newline)
                            try await outbound.write(buffer)
                        }
                    }
                    await readRequests(inbound, answerSink: answerSink)
                    answerSink.finish()
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch {
            logger.debug("connection ended", metadata: ["session": "\(session.id)", "error": "\(error)"])
        }
        registry.closed(session.id)
        await broker.sessionClosed(session)
    }

    /// Reads until the client closes or sends an oversize line; returns once every started request has answered.
    private func readRequests(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>, answerSink: AsyncStream<Data>.Continuation) async {
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
                    let data = Data(buffer: line)
                    registry.startedRequest(session.id)
                    requests.addTask {
                        await handleLine(data, answerSink: answerSink)
                        registry.finishedRequest(session.id)
                    }
                }
            } catch is ByteToMessageDecoderError.PayloadTooLargeError {
                logger.warning("closing connection after an oversize line", metadata: ["session": "\(session.id)", "peer": "\(session.peer)"])
                answerSink.yield(ResponseLine.failure(RPCErrorResponse(id: nil, error: .payloadTooLarge(limit: broker.configuration.maxLineBytes))))
            } catch let leftover as NIOExtrasErrors.LeftOverBytesError {
                // The client closed mid-line: treat what it sent as its last line.
                let data = Data(buffer: leftover.leftOverBytes)
                requests.addTask { await handleLine(data, answerSink: answerSink) }
            } catch {
                logger.debug("read failed", metadata: ["session": "\(session.id)", "error": "\(error)"])
            }
            // The client is gone or done sending: no reserve should keep waiting for it.
            for ticket in session.beginClosing() { broker.waitBoard.remove(ticket) }
            await requests.waitForAll()
        }
    }

    private func handleLine(_ data: Data, answerSink: AsyncStream<Data>.Continuation) async {
        switch LineFraming.parse(data) {
        case .blank:
            return
        case .unusable(let error):
            answerSink.yield(ResponseLine.failure(error))
        case .single(let request):
            if let answer = await answer(request) { answerSink.yield(answer) }
        case .batch(let requests):
            var answers: [Data] = []
            for request in requests {
                if let answer = await answer(request) { answers.append(answer) }
            }
            if let line = ResponseLine.batch(answers) { answerSink.yield(line) }
        }
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
