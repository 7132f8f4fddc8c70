import Foundation
import NIOCore
import NIOPosix

/// A bare HTTP/1.1 GET for tests of the broker's HTTP side: what a Kubernetes probe or Prometheus sends.
public enum HTTPGet {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func fetch(host: String, port: Int, path: String) async throws -> (status: Int, body: String) {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let response = try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n\r\n"))
            var received = ByteBuffer()
            for try await var chunk in inbound { received.writeBuffer(&chunk) }
            return String(buffer: received)
        }
        guard let split = response.range(of: "\r\n\r\n"),
              let status = response.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap({ Int($0) })
        else { throw Failure(description: "not an HTTP response: \(response.prefix(200))") }
        return (status, String(response[split.upperBound...]))
    }
}
