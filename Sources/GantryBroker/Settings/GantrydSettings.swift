import Foundation
import GantryProtocol
import GantrySettings

/// Everything `gantryd` is told: the broker's configuration and what the process around it needs (the HTTP
/// address, the database, logging). Its defaults are the defaults; `table` declares every setting once.
public struct GantrydSettings: Sendable {
    public var broker = BrokerConfiguration()
    public var httpHost = "127.0.0.1"
    public var httpPort = 7441
    /// PostgreSQL to use; nil runs an embedded one in `dataDirectory`.
    public var databaseURL: String?
    public var dataDirectory = ".gantry"
    public var logFormat = "text"
    public var logLevel = "info"
    public var allowUnauthenticated = false
    public var tlsCertificate: String?
    public var tlsKey: String?
    public var tlsClientCA: String?

    public init() {}

    /// The config file's sections beside the scalar settings.
    static let fileSections: Set<String> = ["cron", "packages", "queues", "subscriptions", "tokens", "webhooks"]

    /// Reads the settings: each from its flag, else its environment variable, else the config file, else its
    /// default; then the file's sections and the checks that involve several settings.
    public static func resolve(flags words: [String], configFile path: String?, environment: [String: String]) throws(SettingProblem) -> GantrydSettings {
        let file = try path.map { path throws(SettingProblem) in try SettingsFile(path: path) } ?? SettingsFile()
        var settings = GantrydSettings()
        try table.apply(to: &settings, flags: try table.parseFlags(words), environment: environment,
                        file: file, fileSections: fileSections)
        settings.broker.cronSchedules = try ConfigSections.cronSchedules(file)
        settings.broker.queueLimits = try ConfigSections.queueLimits(file)
        settings.broker.subscriptions = try ConfigSections.subscriptions(file)
        settings.broker.packages = try ConfigSections.packages(file)
        settings.broker.webhooks = try ConfigSections.webhooks(file)
        settings.broker.tokens = try ConfigSections.tokens(file, environment: environment)
        try settings.checkTLS()
        try settings.checkExposure()
        return settings
    }

    private mutating func checkTLS() throws(SettingProblem) {
        switch (tlsCertificate, tlsKey) {
        case let (cert?, key?):
            let tls = TLSSettings(certificateFile: cert, keyFile: key, clientCAFile: tlsClientCA)
            do { _ = try tls.serverConfiguration() } catch {
                throw SettingProblem("TLS cannot start with --tls-cert \(cert) and --tls-key \(key)\(tlsClientCA.map { " and --tls-client-ca \($0)" } ?? ""): \(error). Give PEM files that gantryd can read.")
            }
            broker.tls = tls
        case (nil, nil):
            guard tlsClientCA == nil else { throw SettingProblem("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS first.") }
        default:
            throw SettingProblem("TLS needs both --tls-cert and --tls-key (PEM files).")
        }
    }

    /// Without tokens, only loopback unless the operator says the network is trusted.
    private func checkExposure() throws(SettingProblem) {
        guard broker.tokens.isEmpty, !Self.isLoopback(broker.host), !allowUnauthenticated else { return }
        throw SettingProblem("""
            gantryd would accept anyone on \(broker.host):\(broker.port) with no token: configure tokens \
            (tokens: in the config file, or GANTRY_ADMIN_TOKEN, GANTRY_WORKER_TOKEN, GANTRY_PRODUCER_TOKEN; \
            `gantry token new` makes one), listen on 127.0.0.1, or pass --allow-unauthenticated if the network itself is trusted.
            """)
    }

    static func isLoopback(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return bare == "localhost" || bare == "::1" || bare.hasPrefix("127.")
    }
}
