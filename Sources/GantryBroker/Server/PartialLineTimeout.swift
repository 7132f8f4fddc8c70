import NIOCore

/// Closes a connection whose client starts a line and does not finish it within `timeout` (a slow-loris, or a
/// client stuck mid-write). Idle connections between lines are fine: a worker long-polls in silence.
final class PartialLineTimeout: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if let last = buffer.readableBytesView.last {
            if last == UInt8(ascii: "\n") {
                deadline?.cancel()
                deadline = nil
            } else if deadline == nil {
                let channel = context.channel
                deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
            }
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }
}
