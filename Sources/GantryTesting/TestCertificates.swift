import ChildProcesses
import Foundation

/// A throwaway CA with a server certificate for 127.0.0.1/localhost and a client certificate, made with openssl
/// at test time (and a second CA that signed nothing, to stand for the wrong one).
public struct TestCertificates: Sendable {
    public let directory: URL
    public var caFile: String { path("ca.pem") }
    public var otherCAFile: String { path("other-ca.pem") }
    public var serverCertificate: String { path("server.pem") }
    public var serverKey: String { path("server.key") }
    public var clientCertificate: String { path("client.pem") }
    public var clientKey: String { path("client.key") }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Made once per test process.
    public static var shared: TestCertificates {
        get async throws { try await made.value }
    }

    private static let made = Task { try await make() }

    public static func make() async throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-certs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for (name, subject) in [("ca", "/CN=Gantry Test CA"), ("other-ca", "/CN=Some Other CA")] {
            try await certificates.openssl(["req", "-x509"] + curve + ["-keyout", "\(name).key", "-out", "\(name).pem", "-days", "2", "-subj", subject])
        }
        let uses = [
            ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"),
            ("client", "/CN=gantry-test-client", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n"),
        ]
        for (name, subject, extensions) in uses {
            try Data(extensions.utf8).write(to: directory.appendingPathComponent("\(name).ext"))
            try await certificates.openssl(["req"] + curve + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", subject])
            try await certificates.openssl([
                "x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "\(name).pem", "-days", "2", "-extfile", "\(name).ext",
            ])
        }
        return certificates
    }

    private func openssl(_ arguments: [String]) async throws {
        let completed = try await ChildProcess.run(
            "/usr/bin/env", ["openssl"] + arguments, workingDirectory: directory.path, timeout: .seconds(60))
        guard completed.status == 0 else {
            throw Failure(description: "openssl \(arguments.joined(separator: " ")) \(completed.termination): \(completed.errors)")
        }
    }
}
