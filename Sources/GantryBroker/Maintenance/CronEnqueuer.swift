import Foundation
import GantryProtocol
import Logging

/// Enqueues each cron schedule's job when its tick comes. Fires every due tick once (if another broker got there
/// first, its transaction wins and ours does nothing), then sleeps until the next tick, at most a second so
/// schedules made elsewhere are seen soon. A schedule overdue by many ticks (the brokers were down) fires once and
/// moves on to its next tick after now.
struct CronEnqueuer {
    /// Schedules fired in one round at most; more due ones are fired in the next round, at once.
    static let batchLimit = 100
    /// The longest sleep between rounds.
    static let maxSleep: Duration = .seconds(1)

    let broker: Broker

    struct Round {
        var fired: Int
        var nextDueIn: Duration?
        var moreDue: Bool
    }

    @discardableResult
    func runOnce() async throws -> Round {
        let cron = broker.cronStore
        let logger = broker.logger
        let round = try await cron.due(limit: Self.batchLimit)
        var nextDue = round.nextDueAt
        var fired = 0
        for schedule in round.due {
            guard let tick = schedule.nextRunAt else { continue }
            let next: Date?
            do {
                let (expression, zone) = try CronHandlers.parseSchedule(cron: schedule.cron, timezone: schedule.timezone)
                next = expression.nextFire(after: max(round.now, tick), in: zone)
                if let next { nextDue = min(nextDue ?? next, next) }
            } catch {
                logger.error("cron schedule cannot be read; pausing it", metadata: ["schedule": "\(schedule.name)", "error": "\(error.message)"])
                _ = try await cron.pause(schedule.name)
                continue
            }
            guard let (jobID, state) = try await cron.fire(schedule.name, tick: tick, next: next, job: CronHandlers.runJob(of: schedule, tick: tick)) else {
                continue
            }
            fired += 1
            broker.cron.enqueued(by: schedule, state: state)
            logger.info("cron schedule fired", metadata: [
                "schedule": "\(schedule.name)", "tick": "\(GantryJSON.formatTimestamp(tick))", "job": "\(jobID)",
                "next": "\(next.map(GantryJSON.formatTimestamp) ?? "never")",
            ])
        }
        let wait = nextDue.map { Duration.milliseconds(max(1, Int64(($0.timeIntervalSince(round.now) * 1000).rounded(.up)))) }
        return Round(fired: fired, nextDueIn: wait, moreDue: round.due.count >= Self.batchLimit)
    }

    func round() async throws -> Duration {
        let done = try await runOnce()
        if done.moreDue { return .zero }
        return min(Self.maxSleep, done.nextDueIn ?? Self.maxSleep)
    }
}
