import Foundation
import GantryProtocol
import NIOSSL

/// A broker's address as clients write it: `gantry://host:port` (TCP), `gantrys://host:port` (TLS), or bare
/// `host:port` / `host` (TCP, port 7440); `TOKEN@` before the host carries a token.
public struct BrokerURL: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var tls: Bool
    public var token: String?

    public init(_ url: String) throws {
        var rest = url
        tls = false
        if rest.hasPrefix("gantrys://") {
            tls = true
            rest.removeFirst("gantrys://".count)
        } else if rest.hasPrefix("gantry://") {
            rest.removeFirst("gantry://".count)
        }
        if let at = rest.lastIndex(of: "@") {
            token = String(rest[..<at]).removingPercentEncoding
            rest = String(rest[rest.index(after: at)...])
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let host = parts.first.map(String.init), !host.isEmpty else {
            throw GantryClient.InvalidURL(description: "The broker address must look like gantry://127.0.0.1:7440 or gantrys://broker.example.com:7440 (got \(Self.redacted(url))).")
        }
        let port = parts.count == 2 ? Int(parts[1]) : ProtocolDefaults.port
        guard let port, (1...65535).contains(port) else {
            throw GantryClient.InvalidURL(description: "The broker address must end in a port from 1 to 65535 (got \(Self.redacted(url))).")
        }
        self.host = host
        self.port = port
    }

    /// The URL with any token replaced, for messages and logs.
    public static func redacted(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@") else { return url }
        let scheme = url.range(of: "://").map { url[..<$0.upperBound] } ?? ""
        return scheme + "…@" + url[url.index(after: at)...]
    }
}

/// How a client checks the broker's certificate, and the certificate it shows for mutual TLS.
public struct ClientTLS: Sendable {
    /// PEM file of the CA(s) that sign the broker's certificate; nil trusts the system's store.
    public var caFile: String?
    /// PEM files of this client's certificate and key, for a broker that asks for one.
    public var certificateFile: String?
    public var keyFile: String?

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    /// The settings given, with GANTRY_CA_FILE, GANTRY_CERT_FILE and GANTRY_KEY_FILE for those not given; nil
    /// when none is set anywhere (then TLS is on only for a `gantrys://` URL, trusting the system's CAs).
    public static func fromEnvironment(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) -> ClientTLS? {
        let environment = ProcessInfo.processInfo.environment
        let settings = ClientTLS(
            caFile: caFile ?? environment["GANTRY_CA_FILE"], certificateFile: certificateFile ?? environment["GANTRY_CERT_FILE"],
            keyFile: keyFile ?? environment["GANTRY_KEY_FILE"])
        return settings.caFile == nil && settings.certificateFile == nil && settings.keyFile == nil ? nil : settings
    }

    func makeContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile { configuration.trustRoots = .file(caFile) }
        if let certificateFile, let keyFile {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
        } else if certificateFile != nil || keyFile != nil {
            throw TLSFailure(description: "A client certificate needs both its certificate file and its key file: give both (--cert-file and --key-file, GANTRY_CERT_FILE and GANTRY_KEY_FILE) or neither.")
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

/// TLS with the broker failed: its certificate is not trusted, or it wanted one from us. Not retried.
public struct TLSFailure: Error, CustomStringConvertible {
    public let description: String
}
