import CoreMetrics
import GantryProtocol
import Prometheus
import Synchronization

/// What the broker counts and times, through swift-metrics into a Prometheus registry of its own (so several
/// brokers in one test process never mix their numbers). `/metrics` renders the registry.
///
/// Counters and timings are this broker's own (sum them over brokers); the queue gauges are the cluster's,
/// read from the database's counters at scrape time, so every broker reports the same value (take `max`).
public final class BrokerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    static let reserveWait = "gantry_reserve_wait_seconds"
    static let jobRun = "gantry_job_run_seconds"
    static let databaseWait = "gantry_db_connection_wait_seconds"
    static let databaseQuery = "gantry_db_query_seconds"
    static let stepRun = "gantry_operation_step_seconds"

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        let millisecondsToMinutes: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
                                                 .milliseconds(500), .seconds(1), .seconds(5), .seconds(30), .seconds(60), .seconds(300)]
        factory.durationHistogramBuckets = [
            Self.reserveWait: millisecondsToMinutes,
            Self.jobRun: millisecondsToMinutes + [.seconds(1800), .seconds(3600)],
            Self.stepRun: millisecondsToMinutes + [.seconds(1800), .seconds(3600)],
            Self.databaseWait: [.microseconds(100), .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
                                .milliseconds(500), .seconds(1), .seconds(5)],
            Self.databaseQuery: [.microseconds(250), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                 .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5)],
        ]
        self.factory = factory
        connections = CoreMetrics.Meter(label: "gantry_connections", factory: factory)
        workers = CoreMetrics.Meter(label: "gantry_worker_sessions", factory: factory)
        requestsInFlight = CoreMetrics.Meter(label: "gantry_requests_in_flight", factory: factory)
        databaseConnectionsInUse = CoreMetrics.Meter(label: "gantry_db_connections_in_use", factory: factory)
        databaseUnavailable = CoreMetrics.Counter(label: "gantry_db_unavailable_total", factory: factory)
        connectionsRefused = CoreMetrics.Counter(label: "gantry_connections_refused_total", factory: factory)
        authenticationFailures = CoreMetrics.Counter(label: "gantry_authentication_failures_total", factory: factory)
        databaseQueryTime = CoreMetrics.Timer(label: Self.databaseQuery, factory: factory)
        databaseWaitTime = CoreMetrics.Timer(label: Self.databaseWait, factory: factory)
        reserveWaitTime = CoreMetrics.Timer(label: Self.reserveWait, factory: factory)
    }

    // MARK: broker-wide gauges and timings

    let connections: CoreMetrics.Meter
    let workers: CoreMetrics.Meter
    let requestsInFlight: CoreMetrics.Meter
    let databaseConnectionsInUse: CoreMetrics.Meter
    let databaseUnavailable: CoreMetrics.Counter
    /// Connections turned away at the connection limits.
    let connectionsRefused: CoreMetrics.Counter
    /// `hello`s with a missing or unknown token.
    let authenticationFailures: CoreMetrics.Counter
    let databaseQueryTime: CoreMetrics.Timer
    let databaseWaitTime: CoreMetrics.Timer
    let reserveWaitTime: CoreMetrics.Timer

    // MARK: per queue and type

    /// Labelled metrics made once and looked up after, so a request does not build a handler each time.
    private let labelled = Mutex<[String: any Sendable]>([:])

    private func labelled<Metric: Sendable>(_ label: String, _ dimensions: [(String, String)],
                                            make: (String, [(String, String)]) -> Metric) -> Metric {
        let key = ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: "\u{1F}")
        return labelled.withLock { cache in
            if let metric = cache[key] as? Metric { return metric }
            let metric = make(label, dimensions)
            cache[key] = metric
            return metric
        }
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Counter {
        labelled(label, dimensions) { CoreMetrics.Counter(label: $0, dimensions: $1, factory: factory) }
    }

    private func gauge(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Gauge {
        labelled(label, dimensions) { CoreMetrics.Gauge(label: $0, dimensions: $1, factory: factory) }
    }

    /// How an attempt or a job ended, for the counters named after each.
    enum Outcome: String {
        case enqueued, completed, failed, retried, dead
    }

    func count(_ outcome: Outcome, queue: String, type: String, by amount: Int = 1) {
        counter("gantry_jobs_\(outcome.rawValue)_total", [("queue", queue), ("type", type)]).increment(by: amount)
    }

    /// Attempts that ended without an ack or nack, by why: `lease_expired`, `connection_closed`, `broker_lost`.
    func leasesLost(queue: String, reason: String, count: Int) {
        counter("gantry_leases_lost_total", [("queue", queue), ("reason", reason)]).increment(by: count)
    }

    func expired(queue: String, count: Int) {
        counter("gantry_jobs_expired_total", [("queue", queue)]).increment(by: count)
    }

    func jobRan(queue: String, type: String, for duration: Duration) {
        labelled(Self.jobRun, [("queue", queue), ("type", type)]) { CoreMetrics.Timer(label: $0, dimensions: $1, factory: factory) }
            .recordNanoseconds(duration.nanoseconds)
    }

    func operationStarted(name: String) {
        counter("gantry_operations_started_total", [("name", name)]).increment()
    }

    /// A step's attempt ended (acked or nacked) after `duration` on its worker.
    func stepRan(operation: String, type: String, for duration: Duration) {
        labelled(Self.stepRun, [("operation", operation), ("type", type)]) { CoreMetrics.Timer(label: $0, dimensions: $1, factory: factory) }
            .recordNanoseconds(duration.nanoseconds)
    }

    /// Operations by name and how they ended, as the database's counters say now (every broker the same).
    func record(operations counters: [(name: String, counter: String, value: Int64)]) {
        for (name, counter, value) in counters {
            gauge("gantry_operations", [("name", name), ("counter", counter)]).record(value)
        }
    }

    func request(_ method: String, failed: Bool) {
        counter("gantry_requests_total", [("method", method), ("outcome", failed ? "error" : "ok")]).increment()
    }

    /// The cluster's queues as the database's counters say now.
    func record(_ queues: [String: Stats.QueueStats]) {
        for (queue, stats) in queues {
            for (state, count) in stats.counts {
                gauge("gantry_queue_jobs", [("queue", queue), ("state", state)]).record(count)
            }
            gauge("gantry_queue_oldest_available_seconds", [("queue", queue)]).record(Double(stats.latencyMs) / 1000)
            gauge("gantry_queue_paused", [("queue", queue)]).record(stats.paused ? 1 : 0)
        }
    }

    /// The Prometheus text exposition of everything above.
    public func render() -> String { registry.emitToString() }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
