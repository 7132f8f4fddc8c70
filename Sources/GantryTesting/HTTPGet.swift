import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// A bare HTTP/1.1 GET for tests of the broker's HTTP side: what a Kubernetes probe or Prometheus sends.
public enum HTTPGet {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// - Parameters:
    ///   - headers: extra request headers, e.g. `["Authorization": "Bearer …"]`.
    ///   - caFile: speak TLS, trusting this CA.
    public static func fetch(host: String, port: Int, path: String, headers: [String: String] = [:],
                             caFile: String? = nil) async throws -> (status: Int, body: String) {
        let tls = try caFile.map { file -> NIOSSLContext in
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(file)
            return try NIOSSLContext(configuration: configuration)
        }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil)) }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let extra = headers.map { "\($0.key): \($0.value)\r\n" }.joined()
        let response = try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\n\(extra)Connection: close\r\n\r\n"))
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
