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
        Entry("http", "HOST:PORT", "Address for HTTP: /live, /ready, /metrics; port 0 picks a free one.",
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
        Entry("data_dir", "PATH", "Where the embedded PostgreSQL keeps its data.", show: { $0.dataDirectory }) { settings, text in
            settings.dataDirectory = text
        },
        Entry("log_format", "text|json", "Log lines as text or JSON.", show: { $0.logFormat }) { settings, text throws(SettingProblem) in
            settings.logFormat = try SettingValue.oneOf(text, ["text", "json"])
        },
        Entry("log_level", "LEVEL", "trace, debug, info, notice, warning, error or critical.", show: { $0.logLevel }) { settings, text throws(SettingProblem) in
            settings.logLevel = try SettingValue.oneOf(text, ["trace", "debug", "info", "notice", "warning", "error", "critical"])
        },
        Entry("max_line_bytes", "N", "The longest request line accepted, in bytes.", show: { "\($0.broker.maxLineBytes)" }) { settings, text throws(SettingProblem) in
            settings.broker.maxLineBytes = try SettingValue.integer(text, atLeast: 1024)
        },
        Entry("default_lease_ms", "MS", "Lease length when neither reserve nor the job sets one.",
              show: { "\($0.broker.defaultLeaseMs)" }) { settings, text throws(SettingProblem) in
            settings.broker.defaultLeaseMs = try SettingValue.integer(text, atLeast: 1000)
        },
        Entry("drain_grace_ms", "MS", "On SIGTERM, how long workers may keep acking what they hold.",
              show: { SettingValue.showMilliseconds($0.broker.drainGrace) }) { settings, text throws(SettingProblem) in
            settings.broker.drainGrace = try SettingValue.milliseconds(text, atLeast: 0)
        },
        Entry("storage_timeout_ms", "MS", "How long a request may wait for a database connection before it is answered -32004 storage unavailable.",
              show: { SettingValue.showMilliseconds($0.broker.storageTimeout) }) { settings, text throws(SettingProblem) in
            settings.broker.storageTimeout = try SettingValue.milliseconds(text, atLeast: 100)
        },
        Entry("broker_timeout_ms", "MS", "A broker silent this long is dead; the others put back the jobs its workers held.",
              show: { SettingValue.showMilliseconds($0.broker.brokerTimeout) }) { settings, text throws(SettingProblem) in
            settings.broker.brokerTimeout = try SettingValue.milliseconds(text, atLeast: 1000)
        },
        Entry("partial_line_timeout_ms", "MS", "A client that starts a line and does not finish it within this time is disconnected.",
              show: { SettingValue.showMilliseconds($0.broker.partialLineTimeout) }) { settings, text throws(SettingProblem) in
            settings.broker.partialLineTimeout = try SettingValue.milliseconds(text, atLeast: 100)
        },
        Entry("completed_retention_ms", "MS", "How long completed jobs are kept for inspection.",
              show: { SettingValue.showMilliseconds($0.broker.completedRetention) }) { settings, text throws(SettingProblem) in
            settings.broker.completedRetention = try SettingValue.milliseconds(text, atLeast: 0)
        },
        Entry("failed_retention_ms", "MS", "How long dead, cancelled and expired jobs are kept.",
              show: { SettingValue.showMilliseconds($0.broker.failedRetention) }) { settings, text throws(SettingProblem) in
            settings.broker.failedRetention = try SettingValue.milliseconds(text, atLeast: 0)
        },
        Entry("tls_cert", "PEM", "Certificate (chain) for TLS on both ports; needs tls_key.", show: { $0.tlsCertificate }) { settings, text in
            settings.tlsCertificate = text
        },
        Entry("tls_key", "PEM", "Private key of tls_cert.", show: { $0.tlsKey }) { settings, text in
            settings.tlsKey = text
        },
        Entry("tls_client_ca", "PEM", "CA file: clients must show a certificate it signed (mutual TLS).", show: { $0.tlsClientCA }) { settings, text in
            settings.tlsClientCA = text
        },
        Entry("allow_unauthenticated", nil, "Serve a non-loopback listen address without tokens (only on a network you trust: every client may do everything).",
              show: { "\($0.allowUnauthenticated)" }) { settings, text throws(SettingProblem) in
            settings.allowUnauthenticated = try SettingValue.boolean(text)
        },
        Entry("max_connections", "N", "Open connections at most.", show: { "\($0.broker.maxConnections)" }) { settings, text throws(SettingProblem) in
            settings.broker.maxConnections = try SettingValue.integer(text, atLeast: 1)
        },
        Entry("max_connections_per_address", "N", "Open connections at most from one IP address.",
              show: { "\($0.broker.maxConnectionsPerAddress)" }) { settings, text throws(SettingProblem) in
            settings.broker.maxConnectionsPerAddress = try SettingValue.integer(text, atLeast: 1)
        },
        Entry("idle_timeout_ms", "MS", "Close a connection with nothing running that sent nothing for this long; 0 never.",
              show: { $0.broker.idleTimeout.map(SettingValue.showMilliseconds) ?? "0" }) { settings, text throws(SettingProblem) in
            let value = try SettingValue.integer(text, Int64.self, atLeast: 0)
            guard value == 0 || value >= 1000 else { throw SettingProblem("must be 0 (never) or at least 1000, got \(value).") }
            settings.broker.idleTimeout = value == 0 ? nil : .milliseconds(value)
        },
        Entry("auth_timeout_ms", "MS", "With tokens, close a connection that has not authenticated this long after opening.",
              show: { SettingValue.showMilliseconds($0.broker.authenticationTimeout) }) { settings, text throws(SettingProblem) in
            settings.broker.authenticationTimeout = try SettingValue.milliseconds(text, atLeast: 100)
        },
        Entry("max_wait_ms", "MS", "The longest wait_ms a reserve may ask for.", show: { "\($0.broker.maxWaitMs)" }) { settings, text throws(SettingProblem) in
            settings.broker.maxWaitMs = try SettingValue.integer(text, within: 0...Reserve.maxWaitMs)
        },
        Entry("max_batch_jobs", "N", "The most jobs in one enqueue_batch.", show: { "\($0.broker.maxBatchJobs)" }) { settings, text throws(SettingProblem) in
            settings.broker.maxBatchJobs = try SettingValue.integer(text, within: 1...ProtocolDefaults.maxBatchJobs)
        },
        // 2 bytes: the size of [] or {}.
        Entry("max_args_bytes", "N", "The largest args of one job, in bytes of JSON.", show: { "\($0.broker.maxArgsBytes)" }) { settings, text throws(SettingProblem) in
            settings.broker.maxArgsBytes = try SettingValue.integer(text, atLeast: 2)
        },
        Entry("max_in_flight", "N", "Requests one connection may have running at once before the broker stops reading it.",
              show: { "\($0.broker.maxInFlightPerConnection)" }) { settings, text throws(SettingProblem) in
            settings.broker.maxInFlightPerConnection = try SettingValue.integer(text, atLeast: 1)
        },
    ], environmentPrefix: "GANTRYD_", environmentAliases: ["database_url": ["GANTRY_DATABASE_URL"]])
}
