import ArgumentParser
import Foundation
import GantryBroker
import GantryProtocol
import Yams

/// Settings shared by `gantryd serve` and `gantryd migrate`: flags override the YAML file, which overrides
/// the defaults; `GANTRY_DATABASE_URL` stands in for `--database-url`.
struct CommonOptions: ParsableArguments {
    @Option(help: "A YAML file of settings (keys as the flags, with underscores: listen, http, database_url, data_dir, log_format, log_level, max_line_bytes, default_lease_ms, drain_grace_ms, storage_timeout_ms, broker_timeout_ms, partial_line_timeout_ms, completed_retention_ms, failed_retention_ms, tls_cert, tls_key, tls_client_ca, allow_unauthenticated, max_connections, max_connections_per_address, idle_timeout_ms, auth_timeout_ms, max_wait_ms, max_batch_jobs, max_args_bytes, max_in_flight), plus cron: (schedules by name), queues: (limits by queue) and tokens: (a list of name, sha256, role, queues).")
    var config: String?

    @Option(help: "PostgreSQL to use, as postgres://user:password@host:5432/database. Without it (and without GANTRY_DATABASE_URL) gantryd runs its own embedded PostgreSQL in --data-dir.")
    var databaseURL: String?

    @Option(help: "Where the embedded PostgreSQL keeps its data (default: .gantry).")
    var dataDir: String?

    @Option(help: "Log as text (default) or json, one line per event.")
    var logFormat: String?

    @Option(help: "trace, debug, info (default), notice, warning, error or critical.")
    var logLevel: String?

    /// The merged settings file, read once.
    func fileSettings() throws -> FileSettings {
        guard let config else { return FileSettings() }
        let text: String
        do { text = try String(contentsOfFile: config, encoding: .utf8) } catch {
            throw ValidationError("Cannot read the config file \(config): \(error.localizedDescription)")
        }
        do { return try YAMLDecoder().decode(FileSettings.self, from: text, userInfo: [JSONValue.scalarsFirst: true]) } catch {
            throw ValidationError("The config file \(config) is not valid: \(error). Keys: \(FileSettings.CodingKeys.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
    }

    func databaseURL(_ file: FileSettings) -> String? {
        databaseURL ?? ProcessInfo.processInfo.environment["GANTRY_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? file.databaseURL
    }

    func dataDirectory(_ file: FileSettings) -> URL {
        URL(fileURLWithPath: dataDir ?? file.dataDir ?? ".gantry")
    }
}

/// What a YAML config file may hold.
struct FileSettings: Decodable {
    var listen: String?
    var http: String?
    var databaseURL: String?
    var dataDir: String?
    var logFormat: String?
    var logLevel: String?
    var maxLineBytes: Int?
    var defaultLeaseMs: Int64?
    var drainGraceMs: Int64?
    var storageTimeoutMs: Int64?
    var brokerTimeoutMs: Int64?
    var partialLineTimeoutMs: Int64?
    var completedRetentionMs: Int64?
    var failedRetentionMs: Int64?
    var cron: [String: CronFileEntry]?
    var queues: [String: QueueFileEntry]?
    var tokens: [TokenFileEntry]?
    var tlsCert: String?
    var tlsKey: String?
    var tlsClientCA: String?
    var allowUnauthenticated: Bool?
    var maxConnections: Int?
    var maxConnectionsPerAddress: Int?
    var idleTimeoutMs: Int64?
    var authTimeoutMs: Int64?
    var maxWaitMs: Int64?
    var maxBatchJobs: Int?
    var maxArgsBytes: Int?
    var maxInFlight: Int?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case listen, http
        case databaseURL = "database_url"
        case dataDir = "data_dir"
        case logFormat = "log_format"
        case logLevel = "log_level"
        case maxLineBytes = "max_line_bytes"
        case defaultLeaseMs = "default_lease_ms"
        case drainGraceMs = "drain_grace_ms"
        case storageTimeoutMs = "storage_timeout_ms"
        case brokerTimeoutMs = "broker_timeout_ms"
        case partialLineTimeoutMs = "partial_line_timeout_ms"
        case completedRetentionMs = "completed_retention_ms"
        case failedRetentionMs = "failed_retention_ms"
        case cron, queues, tokens
        case tlsCert = "tls_cert"
        case tlsKey = "tls_key"
        case tlsClientCA = "tls_client_ca"
        case allowUnauthenticated = "allow_unauthenticated"
        case maxConnections = "max_connections"
        case maxConnectionsPerAddress = "max_connections_per_address"
        case idleTimeoutMs = "idle_timeout_ms"
        case authTimeoutMs = "auth_timeout_ms"
        case maxWaitMs = "max_wait_ms"
        case maxBatchJobs = "max_batch_jobs"
        case maxArgsBytes = "max_args_bytes"
        case maxInFlight = "max_in_flight"
    }

    /// The `cron:` section as schedules, each checked as `cron.upsert` would check it.
    func cronSchedules() throws -> [CronUpsert.Params]? {
        guard let cron else { return nil }
        return try cron.sorted(by: { $0.key < $1.key }).map { name, entry in
            let params = CronUpsert.Params(
                name: name, cron: entry.cron, type: entry.type, args: entry.args ?? .emptyArray, queue: entry.queue ?? ProtocolDefaults.queue,
                priority: entry.priority ?? ProtocolDefaults.priority, description: entry.description, timezone: entry.timezone ?? "UTC")
            do {
                try params.validate()
                _ = try CronHandlers.parseSchedule(cron: params.cron, timezone: params.timezone)
            } catch {
                throw ValidationError("The config file's cron schedule \(name) is not valid: \((error as? RPCErrorObject)?.message ?? "\(error)")")
            }
            return params
        }
    }

    /// The `queues:` section as limits, each checked as `queues.configure` would check it.
    func queueLimits() throws -> [String: QueueLimit]? {
        guard let queues else { return nil }
        var limits: [String: QueueLimit] = [:]
        for (queue, entry) in queues {
            let params = QueuesConfigure.Params(queue: queue, concurrency: entry.concurrency, rateLimit: entry.rateLimit)
            do { try params.validate() } catch {
                throw ValidationError("The config file's limits for queue \(queue) are not valid: \(error.message)")
            }
            limits[queue] = QueueLimit(concurrency: entry.concurrency, rateLimit: entry.rateLimit)
        }
        return limits
    }
}

/// One schedule under `cron:`, keyed by its name.
struct CronFileEntry: Decodable {
    var cron: String
    var type: String
    var args: JSONValue?
    var queue: String?
    var priority: Int?
    var description: String?
    var timezone: String?
}

/// One queue under `queues:`.
struct QueueFileEntry: Decodable {
    var concurrency: Int?
    var rateLimit: RateLimit?

    enum CodingKeys: String, CodingKey {
        case concurrency
        case rateLimit = "rate_limit"
    }
}

/// `host:port`, `:port` or `port`.
func parseListenAddress(_ text: String, flag: String = "--listen") throws -> (host: String, port: Int) {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    let host = parts.count > 1 ? parts.dropLast().joined(separator: ":") : "127.0.0.1"
    guard let portText = parts.last, let port = Int(portText), (0...65535).contains(port) else {
        throw ValidationError("\(flag) must be host:port, such as 127.0.0.1:\(flag == "--http" ? 7441 : 7440) (got \(text)).")
    }
    return (host.isEmpty ? "0.0.0.0" : host, port)
}

/// A numeric setting from its flag, else the YAML file, refused naming its flag when below `minimum`; nil when
/// neither gives it.
func checkedSetting<Value: Comparable>(_ flag: Value?, _ file: Value?, _ name: String, atLeast minimum: Value) throws -> Value? {
    guard let value = flag ?? file else { return nil }
    guard value >= minimum else { throw ValidationError("--\(name) must be at least \(minimum).") }
    return value
}

/// The same, for a setting with an upper bound too.
func checkedSetting<Value: Comparable>(_ flag: Value?, _ file: Value?, _ name: String, within allowed: ClosedRange<Value>) throws -> Value? {
    guard let value = flag ?? file else { return nil }
    guard allowed.contains(value) else { throw ValidationError("--\(name) must be between \(allowed.lowerBound) and \(allowed.upperBound).") }
    return value
}
