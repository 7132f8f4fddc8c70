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
    public static let shared: Result<TestCertificates, Failure> = Result { try make() }.mapError { Failure(description: "\($0)") }

    public static func make() throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-certs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for (name, subject) in [("ca", "/CN=Gantry Test CA"), ("other-ca", "/CN=Some Other CA")] {
            try certificates.openssl(["req", "-x509"] + curve + ["-keyout", "\(name).key", "-out", "\(name).pem", "-days", "2", "-subj", subject])
        }
        let uses = [
            ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"),
            ("client", "/CN=gantry-test-client", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n"),
        ]
        for (name, subject, extensions) in uses {
            try Data(extensions.utf8).write(to: directory.appendingPathComponent("\(name).ext"))
            try certificates.openssl(["req"] + curve + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", subject])
            try certificates.openssl([
                "x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "\(name).pem", "-days", "2", "-extfile", "\(name).ext",
            ])
        }
        return certificates
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.currentDirectoryURL = directory
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw Failure(description: "openssl \(arguments.joined(separator: " ")) failed: \(text)")
        }
    }
}
