import ArgumentParser
import Foundation
import GantryBroker
import GantryProtocol

/// Who may connect and what a connection may cost: tokens, TLS and limits, from flags, the YAML file and the
/// environment (flags win, then the file).
struct SecurityOptions: ParsableArguments {
    @Option(help: "PEM certificate (chain) for TLS on both ports; needs --tls-key.")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    @Option(help: "PEM CA file: clients must show a certificate it signed (mutual TLS).")
    var tlsClientCa: String?

    @Flag(help: "Serve a non-loopback --listen address without tokens (only on a network you trust: every client may do everything).")
    var allowUnauthenticated = false

    @Option(help: "Open connections at most (default 20000).")
    var maxConnections: Int?

    @Option(help: "Open connections at most from one IP address (default 20000).")
    var maxConnectionsPerAddress: Int?

    @Option(help: "Close a connection with nothing running that sent nothing for this long, in ms (default 3600000, an hour; 0 never).")
    var idleTimeoutMs: Int64?

    @Option(help: "With tokens, close a connection that has not authenticated this long after opening, in ms (default 10000).")
    var authTimeoutMs: Int64?

    @Option(help: "The longest wait_ms a reserve may ask for (default 300000, 5 minutes).")
    var maxWaitMs: Int64?

    @Option(help: "The most jobs in one enqueue_batch (default 10000).")
    var maxBatchJobs: Int?

    @Option(help: "The largest args of one job, in bytes of JSON (default: the line limit).")
    var maxArgsBytes: Int?

    @Option(help: "Requests one connection may have running at once before the broker stops reading it (default 256).")
    var maxInFlight: Int?

    /// Plain tokens from the environment, one per role (for containers whose secrets arrive as variables).
    static let environmentTokens: [(variable: String, role: Role)] = [
        ("GANTRY_ADMIN_TOKEN", .admin), ("GANTRY_WORKER_TOKEN", .worker), ("GANTRY_PRODUCER_TOKEN", .producer),
    ]

    func apply(_ file: FileSettings, to configuration: inout BrokerConfiguration) throws {
        configuration.tokens = try tokens(file)
        let cert = tlsCert ?? file.tlsCert
        let key = tlsKey ?? file.tlsKey
        let clientCA = tlsClientCa ?? file.tlsClientCA
        switch (cert, key) {
        case let (cert?, key?):
            let settings = TLSSettings(certificateFile: cert, keyFile: key, clientCAFile: clientCA)
            do { _ = try settings.serverConfiguration() } catch {
                throw ValidationError("TLS cannot start with --tls-cert \(cert) and --tls-key \(key)\(clientCA.map { " and --tls-client-ca \($0)" } ?? ""): \(error). Give PEM files that gantryd can read.")
            }
            configuration.tls = settings
        case (nil, nil):
            guard clientCA == nil else { throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS first.") }
        default:
            throw ValidationError("TLS needs both --tls-cert and --tls-key (PEM files).")
        }
        if configuration.tokens.isEmpty && !Self.isLoopback(configuration.host) && !(allowUnauthenticated || file.allowUnauthenticated == true) {
            throw ValidationError("""
                gantryd would accept anyone on \(configuration.host):\(configuration.port) with no token: configure tokens \
                (tokens: in the config file, or GANTRY_ADMIN_TOKEN, GANTRY_WORKER_TOKEN, GANTRY_PRODUCER_TOKEN; \
                `gantry token new` makes one), listen on 127.0.0.1, or pass --allow-unauthenticated if the network itself is trusted.
                """)
        }
        if let value = try checkedSetting(maxConnections, file.maxConnections, "max-connections", atLeast: 1) {
            configuration.maxConnections = value
        }
        if let value = try checkedSetting(maxConnectionsPerAddress, file.maxConnectionsPerAddress, "max-connections-per-address", atLeast: 1) {
            configuration.maxConnectionsPerAddress = value
        }
        if let value = idleTimeoutMs ?? file.idleTimeoutMs {
            guard value == 0 || value >= 1000 else { throw ValidationError("--idle-timeout-ms must be 0 (never) or at least 1000.") }
            configuration.idleTimeout = value == 0 ? nil : .milliseconds(value)
        }
        if let value = try checkedSetting(authTimeoutMs, file.authTimeoutMs, "auth-timeout-ms", atLeast: 100) {
            configuration.authenticationTimeout = .milliseconds(value)
        }
        if let value = try checkedSetting(maxWaitMs, file.maxWaitMs, "max-wait-ms", within: 0...Reserve.maxWaitMs) { configuration.maxWaitMs = value }
        if let value = try checkedSetting(maxBatchJobs, file.maxBatchJobs, "max-batch-jobs", within: 1...ProtocolDefaults.maxBatchJobs) {
            configuration.maxBatchJobs = value
        }
        // 2 bytes: the size of [] or {}.
        if let value = try checkedSetting(maxArgsBytes, file.maxArgsBytes, "max-args-bytes", atLeast: 2) { configuration.maxArgsBytes = value }
        if let value = try checkedSetting(maxInFlight, file.maxInFlight, "max-in-flight", atLeast: 1) {
            configuration.maxInFlightPerConnection = value
        }
    }

    /// The file's `tokens:` and the environment's, each checked; names are unique.
    func tokens(_ file: FileSettings) throws -> [AccessToken] {
        var tokens: [AccessToken] = []
        for (index, entry) in (file.tokens ?? []).enumerated() {
            let label = entry.name.map { "\"\($0)\"" } ?? "number \(index + 1)"
            guard let name = entry.name, !name.isEmpty else { throw ValidationError("The config file's token \(label) needs a name (it names the token in logs).") }
            guard let role = Role(rawValue: entry.role ?? "") else {
                throw ValidationError("The config file's token \(label) needs a role: producer, worker or admin.")
            }
            guard let hex = entry.sha256, let digest = AccessToken.parseDigest(hex) else {
                throw ValidationError("The config file's token \(label) needs sha256: the token's SHA-256 as 64 hex digits (`gantry token new` prints it). The token itself never goes in the file.")
            }
            if role == .admin && entry.queues != nil {
                throw ValidationError("The config file's token \(label) is an admin token limited to queues; admin tokens cover every queue. Give it the role producer or worker, or drop queues.")
            }
            if let queues = entry.queues, queues.isEmpty {
                throw ValidationError("The config file's token \(label) has an empty queues list; leave queues out for every queue.")
            }
            tokens.append(AccessToken(name: name, digest: digest, role: role, queues: entry.queues.map(Set.init)))
        }
        let environment = ProcessInfo.processInfo.environment
        for (variable, role) in Self.environmentTokens {
            guard let plain = environment[variable], !plain.isEmpty else { continue }
            guard plain.count >= 16 else { throw ValidationError("\(variable) is shorter than 16 characters; use `gantry token new` for a strong one.") }
            tokens.append(AccessToken(name: variable.lowercased(), plain: plain, role: role))
        }
        var seen: Set<String> = []
        for token in tokens where !seen.insert(token.name).inserted {
            throw ValidationError("Two tokens are named \"\(token.name)\"; names must be unique (they name tokens in logs).")
        }
        return tokens
    }

    static func isLoopback(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return bare == "localhost" || bare == "::1" || bare.hasPrefix("127.")
    }
}

/// One entry of the file's `tokens:` list.
struct TokenFileEntry: Decodable {
    var name: String?
    var sha256: String?
    var role: String?
    var queues: [String]?
}
