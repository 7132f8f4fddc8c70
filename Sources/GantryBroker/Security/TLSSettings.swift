import NIOSSL

/// The broker's certificate and key (PEM), and for mutual TLS the CA that signs its clients' certificates.
/// One setting for both ports: JSON-RPC and HTTP.
public struct TLSSettings: Sendable {
    public var certificateFile: String
    public var keyFile: String
    /// Clients must show a certificate signed by this CA (mutual TLS); nil asks for none.
    public var clientCAFile: String?

    public init(certificateFile: String, keyFile: String, clientCAFile: String? = nil) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
    }

    /// Reads the files now, so a bad path or a file that is not PEM stops gantryd before it serves.
    public func serverConfiguration() throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        if let clientCAFile {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCAFile))
            // Clients are known by their CA, not by a name to match.
            configuration.certificateVerification = .noHostnameVerification
        }
        return configuration
    }
}
