import Logging
import ServiceLifecycle

/// Runs a chore again and again, sleeping between runs for as long as the chore asks, until shutdown.
/// A failing run (Postgres away) is logged and retried; it never ends the broker.
struct PeriodicChore: Service {
    let name: String
    let logger: Logger
    /// Does one round and returns how long to sleep before the next.
    let round: @Sendable () async throws -> Duration
    var retryAfterFailure: Duration = .seconds(1)

    init(name: String, logger: Logger, round: @escaping @Sendable () async throws -> Duration) {
        self.name = name
        self.logger = logger
        self.round = round
    }

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var pause = retryAfterFailure
            do {
                pause = try await round()
            } catch {
                logger.warning("\(name) failed; will retry", metadata: ["error": "\(error)"])
            }
            try? await gracefulShutdownAwareSleep(pause)
        }
    }

    private func gracefulShutdownAwareSleep(_ duration: Duration) async throws {
        try await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
    }
}
