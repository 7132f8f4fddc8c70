import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// No database connection could be had in time: PostgreSQL is down, unreachable, or every connection is busy.
/// Nothing was sent to the database, so the request can safely be retried.
public struct StorageUnavailable: Error, CustomStringConvertible {
    public let waited: Duration
    public var description: String { "no PostgreSQL connection could be had within \(waited)" }
}

/// Runs store work on a pooled connection, or fails fast with `StorageUnavailable`. PostgresClient would
/// otherwise wait for a connection for as long as PostgreSQL is away, and clients with it. The deadline covers
/// only the wait for a connection: once work has started on one it runs to the end, so a timeout never leaves a
/// client unsure whether its write happened.
public struct Storage: Sendable {
    public let client: PostgresClient
    /// Where the hot statements run (see PostgresPipelines); everything else runs on `client`.
    public let pipelines: PostgresPipelines
    public let connectionTimeout: Duration
    let metrics: BrokerMetrics?

    public init(client: PostgresClient, pipelines: PostgresPipelines, connectionTimeout: Duration = .seconds(5),
                metrics: BrokerMetrics? = nil) {
        self.client = client
        self.pipelines = pipelines
        self.connectionTimeout = connectionTimeout
        self.metrics = metrics
    }

    private final class Race: Sendable {
        enum State { case waiting, started, timedOut }
        let state = Mutex(State.waiting)

        /// The connection arrived: start work unless the deadline already passed.
        func start() -> Bool {
            state.withLock {
                guard $0 == .waiting else { return false }
                $0 = .started
                return true
            }
        }

        /// The deadline passed: give up unless work already started.
        func timeOut() -> Bool {
            state.withLock {
                guard $0 == .waiting else { return false }
                $0 = .timedOut
                return true
            }
        }

        var hasTimedOut: Bool { state.withLock { $0 == .timedOut } }
    }

    public func withConnection<Value: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> Value) async throws -> Value {
        let race = Race()
        let (client, timeout, metrics) = (client, connectionTimeout, self.metrics)
        let asked = ContinuousClock.now
        // The work has a task of its own so that the deadline can give up on the wait by cancelling it. The deadline
        // is an event-loop timer, not a task sleeping beside it: this runs once per query, and a second task and a
        // sleep cost more than the rest of the bookkeeping.
        let work = Task {
            try await client.withConnection { connection in
                guard race.start() else { throw StorageUnavailable(waited: timeout) }
                guard let metrics else { return try await body(connection) }
                let started = ContinuousClock.now
                metrics.databaseWaitTime.recordNanoseconds((started - asked).nanoseconds)
                metrics.databaseConnectionsInUse.increment()
                defer {
                    metrics.databaseConnectionsInUse.decrement()
                    metrics.databaseQueryTime.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
                }
                return try await body(connection)
            }
        }
        let deadline = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(timeout)) {
            if race.timeOut() { work.cancel() }
        }
        defer { deadline.cancel() }
        do {
            return try await withTaskCancellationHandler { try await work.value } onCancel: { work.cancel() }
        } catch where race.hasTimedOut {
            metrics?.databaseUnavailable.increment()
            throw StorageUnavailable(waited: timeout)
        }
    }
}

extension Error {
    /// What failed inside a transaction: PostgresNIO's `withTransaction` wraps it in a `PostgresTransactionError`,
    /// and whether PostgreSQL is away, or refused the rows, is told from the error inside.
    var unwrappingTransaction: any Error {
        guard let failed = self as? PostgresTransactionError else { return self }
        return failed.beginError ?? failed.closureError ?? failed.commitError ?? failed
    }
}

extension PSQLError {
    /// The connection failed, or PostgreSQL refused for its own state (shutting down, out of resources, a
    /// serialization failure), not for what the statement held: retrying later may succeed.
    var meansPostgresIsAway: Bool {
        guard let sqlState = serverInfo?[.sqlState] else { return true }
        return Self.meansPostgresIsAway(sqlState: sqlState)
    }

    /// Connection exceptions, operator intervention, insufficient resources, transaction rollback (serialization).
    static func meansPostgresIsAway(sqlState: String) -> Bool {
        ["08", "57", "53", "40"].contains(String(sqlState.prefix(2)))
    }
}

extension PostgresClient.Configuration {
    /// The configuration with the session settings every broker connection runs with.
    ///
    /// `plan_cache_mode = force_custom_plan`: the hot statements are prepared (HotStatements.swift), which saves
    /// parsing them, but each run is planned for the table as it is now. A cached generic plan is made once, from
    /// the statistics of that moment: one made while `gantry.jobs` was empty scanned it sequentially forever after,
    /// and the claim slowed with every job queued (wake-up latency went from 2 ms to 140 ms after a backlog had
    /// passed). Left to itself, PostgreSQL may switch to such a plan after five runs.
    /// Sent as a startup parameter, so it touches only Gantry's own connections.
    ///
    /// No keep-alive pings: with them on, the pool arms and cancels a keep-alive timer each time it lends and
    /// takes back a connection, which doubled the client's CPU per query (about 300 µs against 150 µs for a
    /// one-row prepared SELECT, measured here; vapor/postgres-nio#511). A connection that died while idle is found
    /// out on its next use, and a query that fails because PostgreSQL is away is retried or reported as such.
    public func withGantrySessionSettings() -> PostgresClient.Configuration {
        var configuration = self
        configuration.options.additionalStartupParameters.append(("plan_cache_mode", "force_custom_plan"))
        configuration.options.keepAliveBehavior = nil
        return configuration
    }
}
