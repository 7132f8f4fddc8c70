import Foundation
import GantryProtocol
import Logging

/// Starts an execution of each package with a cron trigger when its tick comes, as `CronEnqueuer` does for
/// schedules: every due tick fires once across brokers (the transaction that moves `next_run_at` on from exactly
/// that tick wins), a package overdue by many ticks fires once, then sleeps until the next tick, at most a second.
struct PackageCron {
    static let batchLimit = 100
    static let maxSleep: Duration = .seconds(1)

    let broker: Broker

    struct Round {
        var fired: Int
        var nextDueIn: Duration?
        var moreDue: Bool
    }

    @discardableResult
    func runOnce() async throws -> Round {
        var fired = 0
        let store = broker.packageStore
        let logger = broker.logger
        let round = try await store.due(limit: Self.batchLimit)
        var nextDue = round.nextDueAt
        for package in round.packages {
            guard let tick = package.nextRunAt else { continue }
            let next: Date?
            do {
                guard let (expression, zone) = try PackageHandlers.schedule(of: package.triggers) else { continue }
                next = expression.nextFire(after: max(round.now, tick), in: zone)
                if let next { nextDue = min(nextDue ?? next, next) }
            } catch {
                logger.error("package cron trigger cannot be read; stopping it", metadata: ["package": "\(package.name)", "error": "\(error.message)"])
                try await store.stopCron(package.name)
                continue
            }
            guard let execution = try await store.fire(package.name, tick: tick, next: next) else { continue }
            fired += 1
            broker.metrics.operationStarted(name: package.name)
            logger.info("package run", metadata: [
                "package": "\(package.name)", "execution": "\(execution)", "by": "cron", "tick": "\(GantryJSON.formatTimestamp(tick))",
                "next": "\(next.map(GantryJSON.formatTimestamp) ?? "never")",
            ])
        }
        let wait = nextDue.map { Duration.milliseconds(max(1, Int64(($0.timeIntervalSince(round.now) * 1000).rounded(.up)))) }
        return Round(fired: fired, nextDueIn: wait, moreDue: round.packages.count >= Self.batchLimit)
    }

    func round() async throws -> Duration {
        let done = try await runOnce()
        if done.moreDue { return .zero }
        return min(Self.maxSleep, done.nextDueIn ?? Self.maxSleep)
    }
}
