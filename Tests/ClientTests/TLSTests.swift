import Foundation
import GantryClient
import GantryProtocol
import GantryTesting
import Testing

/// TLS on both ports, mutual TLS, and tokens through the Swift client: certificates made with openssl for the test.
@Suite(.deadline(.seconds(300))) struct TLSTests {
    static let token = "tls-admin-token-0123456789"

    static func certificates() async throws -> TestCertificates { try await TestCertificates.shared }

    static func broker(mutual: Bool = false) async throws -> BrokerProcess {
        let certificates = try await certificates()
        let (url, _) = try await TestPostgres.freshDatabase()
        var arguments = ["--database-url", url, "--tls-cert", certificates.serverCertificate, "--tls-key", certificates.serverKey]
        if mutual { arguments += ["--tls-client-ca", certificates.caFile] }
        return try await BrokerProcess(arguments: arguments, environment: ["GANTRY_ADMIN_TOKEN": token])
    }

    func client(_ broker: BrokerProcess, tls: ClientTLS?, url: String? = nil, token: String? = TLSTests.token) throws -> GantryClient {
        try GantryClient(url: url ?? "gantrys://127.0.0.1:\(broker.port)", name: "tls-test", token: token, tls: tls, patience: .zero)
    }

    @Test func theRightCAConnectsTheWrongOneOrNoneDoesNot() async throws {
        let certificates = try await Self.certificates()
        let broker = try await Self.broker()
        let trusted = try client(broker, tls: ClientTLS(caFile: certificates.caFile))
        _ = try await trusted.stats()
        let id = try await trusted.enqueue("tls.job", args: ["over TLS"])
        #expect(try await trusted.job(id: id).args == ["over TLS"])

        for tls in [ClientTLS(caFile: certificates.otherCAFile), nil] {
            let untrusted = try client(broker, tls: tls)
            let error = await #expect(throws: TLSFailure.self) { _ = try await untrusted.stats() }
            #expect(error?.description.contains("GANTRY_CA_FILE") == true)
        }

        // Plain TCP to the TLS port gets no answer.
        let plain = try await LineClient.connect(host: broker.host, port: broker.port)
        try await plain.send(#"{"jsonrpc":"2.0","id":1,"method":"stats"}"#)
        let answer = try? await plain.nextLine(timeout: .seconds(3))
        #expect(answer == nil || answer?.contains("jsonrpc") == false)

        // The HTTP side speaks TLS with the same certificate.
        let live = try await HTTPGet.fetch(host: broker.host, port: broker.httpPort, path: "/live", caFile: certificates.caFile)
        #expect(live.status == 200)
    }

    @Test func aTokenInTheURLAndAWrongOne() async throws {
        let certificates = try await Self.certificates()
        let broker = try await Self.broker()
        let tls = ClientTLS(caFile: certificates.caFile)
        let fromURL = try client(broker, tls: tls, url: "gantrys://\(Self.token)@127.0.0.1:\(broker.port)", token: nil)
        _ = try await fromURL.stats()
        let wrong = try client(broker, tls: tls, token: "not-the-token")
        let error = await #expect(throws: RPCErrorObject.self) { _ = try await wrong.stats() }
        #expect(error?.code == -32001)
        #expect(!String(describing: try BrokerURL("gantrys://\(Self.token)@h:1")).isEmpty)
        #expect(BrokerURL.redacted("gantrys://\(Self.token)@h:1") == "gantrys://…@h:1")
    }

    @Test func mutualTLSWantsTheClientsCertificate() async throws {
        let certificates = try await Self.certificates()
        let broker = try await Self.broker(mutual: true)
        let withCertificate = try client(broker, tls: ClientTLS(
            caFile: certificates.caFile, certificateFile: certificates.clientCertificate, keyFile: certificates.clientKey))
        _ = try await withCertificate.stats()
        let without = try client(broker, tls: ClientTLS(caFile: certificates.caFile))
        do {
            _ = try await without.stats()
            Issue.record("a client without a certificate got through")
        } catch is TLSFailure {
        } catch is ConnectionLost {
            // With TLS 1.3 the refusal may arrive as the connection closing after the handshake.
        }
    }

    @Test func urlsReadWithSchemesTokensAndPorts() throws {
        #expect(try BrokerURL("gantrys://t0k%40n@broker.example.com:7450") == BrokerURL.make("broker.example.com", 7450, tls: true, token: "t0k@n"))
        #expect(try BrokerURL("gantry://127.0.0.1:7440") == BrokerURL.make("127.0.0.1", 7440, tls: false, token: nil))
        #expect(try BrokerURL("localhost") == BrokerURL.make("localhost", 7440, tls: false, token: nil))
        #expect(throws: GantryClient.InvalidURL.self) { try BrokerURL("gantrys://secret@host:99999") }
        do { _ = try BrokerURL("gantrys://secret@host:99999") } catch {
            #expect(!"\(error)".contains("secret"), "a token is never echoed in an error")
        }
    }
}

extension BrokerURL {
    static func make(_ host: String, _ port: Int, tls: Bool, token: String?) throws -> BrokerURL {
        var url = try BrokerURL("\(host):\(port)")
        url.tls = tls
        url.token = token
        return url
    }
}
