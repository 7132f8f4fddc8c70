import GantryProtocol
import GantrySettings

extension GantrydSettings {
    typealias Entry = Setting<GantrydSettings>

    /// Every gantryd setting, once: flag, environment variable (`GANTRYD_` + key), YAML key, check and default.
    /// The README's settings table is checked against this list (`SettingsTests`).
    public static let table = SettingTable<GantrydSettings>([
        Entry("listen", "HOST:PORT", "Address for JSON-RPC clients; port 0 picks a free one.",
              show: { "\($0.broker.host):\($0.broker.port)" }) { settings, text throws(SettingProblem) in
            (settings.broker.host, settings.broker.port) = try SettingValue.address(text, example: "127.0.0.1:7440")
        },
        Entry("http", "HOST:PORT", "Address for HTTP: the dashboard, /live, /ready, /metrics; port 0 picks a free one.",
              show: { "\($0.httpHost):\($0.httpPort)" }) { settings, text throws(SettingProblem) in
            (settings.httpHost, settings.httpPort) = try SettingValue.address(text, example: "127.0.0.1:7441")
        },
        Entry("database_url", "URL", "PostgreSQL to use, as postgres://user:password@host:5432/database; without it gantryd runs an embedded PostgreSQL in data_dir.",
              show: { $0.databaseURL }) { settings, text throws(SettingProblem) in
            guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") else {
                throw SettingProblem("must be a URL such as postgres://user:password@host:5432/database, got \"\(text.prefix(20))…\".")
            }
            settings.databaseURL = text
        },
        .text("data_dir", "PATH", "Where the embedded PostgreSQL keeps its data.", \.dataDirectory),
        .choice("log_format", "text|json", "Log lines as text or JSON.", \.logFormat, ["text", "json"]),
        .choice("log_level", "LEVEL", "trace, debug, info, notice, warning, error or critical.", \.logLevel, SettingValue.logLevels),
        .integer("max_line_bytes", "The longest request line accepted, in bytes.", \.broker.maxLineBytes, atLeast: 1024),
        .integer("default_lease_ms", value: "MS", "Lease length when neither reserve nor the job sets one.", \.broker.defaultLeaseMs, atLeast: 1000),
        .milliseconds("drain_grace_ms", "On SIGTERM, how long workers may keep acking what they hold.", \.broker.drainGrace, atLeast: 0),
        .milliseconds("storage_timeout_ms", "How long a request may wait for a database connection before it is answered -32004 storage unavailable.",
                      \.broker.storageTimeout, atLeast: 100),
        .milliseconds("broker_timeout_ms", "A broker silent this long is dead; the others put back the jobs its workers held.",
                      \.broker.brokerTimeout, atLeast: 1000),
        .milliseconds("partial_line_timeout_ms", "A client that starts a line and does not finish it within this time is disconnected.",
                      \.broker.partialLineTimeout, atLeast: 100),
        .milliseconds("completed_retention_ms", "How long completed jobs (and operations) are kept for inspection.", \.broker.completedRetention, atLeast: 0),
        .milliseconds("failed_retention_ms", "How long dead, cancelled and expired jobs (and failed and cancelled operations, and events) are kept.", \.broker.failedRetention, atLeast: 0),
        .text("tls_cert", "PEM", "Certificate (chain) for TLS on both ports; needs tls_key.", \.tlsCertificate),
        .text("tls_key", "PEM", "Private key of tls_cert.", \.tlsKey),
        .text("tls_client_ca", "PEM", "CA file: clients must show a certificate it signed (mutual TLS).", \.tlsClientCA),
        Entry("allow_unauthenticated", nil, "Serve a non-loopback listen address without tokens (only on a network you trust: every client may do everything).",
              show: { "\($0.allowUnauthenticated)" }) { settings, text throws(SettingProblem) in
            settings.allowUnauthenticated = try SettingValue.boolean(text)
        },
        Entry("dashboard_viewers_see_args", nil, "Show job args, results and meta to viewer tokens on the dashboard (admins always see them).",
              show: { "\($0.broker.dashboardViewersSeeArgs)" }) { settings, text throws(SettingProblem) in
            settings.broker.dashboardViewersSeeArgs = try SettingValue.boolean(text)
        },
        .milliseconds("dashboard_session_ms", "How long a dashboard sign-in lasts.", \.broker.dashboardSessionLifetime, atLeast: 60_000),
        .integer("max_connections", "Open connections at most.", \.broker.maxConnections, atLeast: 1),
        .integer("max_connections_per_address", "Open connections at most from one IP address.", \.broker.maxConnectionsPerAddress, atLeast: 1),
        Entry("idle_timeout_ms", "MS", "Close a connection with nothing running that sent nothing for this long; 0 never.",
              show: { $0.broker.idleTimeout.map(SettingValue.showMilliseconds) ?? "0" }) { settings, text throws(SettingProblem) in
            let value = try SettingValue.integer(text, Int64.self, atLeast: 0)
            guard value == 0 || value >= 1000 else { throw SettingProblem("must be 0 (never) or at least 1000, got \(value).") }
            settings.broker.idleTimeout = value == 0 ? nil : .milliseconds(value)
        },
        .milliseconds("auth_timeout_ms", "With tokens, close a connection that has not authenticated this long after opening.",
                      \.broker.authenticationTimeout, atLeast: 100),
        .integer("max_wait_ms", value: "MS", "The longest wait_ms a reserve may ask for.", \.broker.maxWaitMs, within: 0...Reserve.maxWaitMs),
        .integer("max_batch_jobs", "The most jobs in one enqueue_batch.", \.broker.maxBatchJobs, within: 1...ProtocolDefaults.maxBatchJobs),
        // 2 bytes: the size of [] or {}.
        .integer("max_args_bytes", "The largest args of one job, in bytes of JSON.", \.broker.maxArgsBytes, atLeast: 2),
        .integer("max_in_flight", "Requests one connection may have running at once before the broker stops reading it.",
                 \.broker.maxInFlightPerConnection, atLeast: 1),
    ], environmentPrefix: "GANTRYD_", environmentAliases: ["database_url": ["GANTRY_DATABASE_URL"]])
}
