import GantryProtocol

/// Everything a broker needs to know, with the defaults users look for. `gantryd` fills it from flags, the
/// environment and a YAML file; tests fill it directly.
public struct BrokerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 7440
    /// A line longer than this gets an error and the connection is closed.
    public var maxLineBytes = 1 << 20
    /// A client that starts a line and does not finish it within this time is disconnected.
    public var partialLineTimeout: Duration = .seconds(30)
    /// Requests one connection may have running at once before the broker stops reading from it.
    public var maxInFlightPerConnection = 256
    /// How long a lease lasts when neither the reserve nor the job says (Faktory's 30 minutes).
    public var defaultLeaseMs: Int64 = 30 * 60 * 1000
    /// How often leases are checked for running out.
    public var reaperInterval: Duration = .seconds(1)
    /// The slowest a delayed job may be late when no notification arrives.
    public var schedulerMaxSleep: Duration = .milliseconds(250)
    /// How often waiting reserves re-check the database in case a notification was lost.
    public var safetyPollInterval: Duration = .seconds(2)
    /// How long a request may wait for a database connection before it is answered "storage unavailable".
    public var storageTimeout: Duration = .seconds(5)
    /// A broker that has not heartbeaten for this long is dead: other brokers put back what its sessions held.
    public var brokerTimeout: Duration = .seconds(10)
    /// How often this broker heartbeats (a fifth of the timeout, so a few missed beats are tolerated).
    public var heartbeatInterval: Duration { brokerTimeout / 5 }
    /// How long completed jobs stay inspectable before the cleaner deletes them.
    public var completedRetention: Duration = .seconds(24 * 3600)
    /// How long dead, cancelled and expired jobs stay (for inspection and `jobs.retry`).
    public var failedRetention: Duration = .seconds(30 * 24 * 3600)
    /// How often the cleaner looks for finished jobs past their retention.
    public var cleanerInterval: Duration = .seconds(60)
    /// On SIGTERM, how long workers get to ack what they hold before their connections close.
    public var drainGrace: Duration = .seconds(10)
    public var version = "0.1.0"
    /// Tokens clients must present in `hello`; empty means no authentication (then gantryd listens on
    /// loopback only unless told otherwise).
    public var tokens: [AccessToken] = []
    /// TLS on both ports, when set.
    public var tls: TLSSettings?
    /// Open connections at most, in all and from one address; beyond them a connection is told so and closed.
    public var maxConnections = 20_000
    public var maxConnectionsPerAddress = 20_000
    /// A connection with no request running that sends nothing for this long is closed (nil: never).
    public var idleTimeout: Duration? = .seconds(3600)
    /// With tokens, a connection that has not authenticated this long after opening is closed.
    public var authenticationTimeout: Duration = .seconds(10)
    /// The longest a `reserve` may wait, in ms.
    public var maxWaitMs: Int64 = 300_000
    /// The most jobs one `enqueue_batch` may carry.
    public var maxBatchJobs = ProtocolDefaults.maxBatchJobs
    /// The largest `args` a job may carry, in bytes of JSON.
    public var maxArgsBytes = 1 << 20
    /// Whether viewer tokens see job args, results and meta on the dashboard.
    public var dashboardViewersSeeArgs = false
    /// How long a dashboard sign-in lasts.
    public var dashboardSessionLifetime: Duration = .seconds(12 * 3600)
    /// Cron schedules from the config file, applied on start; nil when the file has no `cron:` section (then
    /// schedules from files are left as they are).
    public var cronSchedules: [CronUpsert.Params]?
    /// Queue limits from the config file, applied on start; nil when the file has no `queues:` section.
    public var queueLimits: [String: QueueLimit]?
    /// Subscriptions from the config file, applied on start; nil when the file has no `subscriptions:` section.
    public var subscriptions: [SubscriptionsUpsert.Params]?
    /// Packages from the config file, applied on start; nil when the file has no `packages:` section.
    public var packages: [PackagesUpsert.Params]?
    /// Webhooks from the config file, applied on start; nil when the file has no `webhooks:` section.
    public var webhooks: [WebhooksUpsert.Params]?

    public init() {}
}
