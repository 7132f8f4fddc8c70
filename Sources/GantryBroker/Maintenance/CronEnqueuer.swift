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
            var missed: (count: Int, first: Date?) = (0, nil)
            do {
                let (expression, zone) = try CronHandlers.parseSchedule(cron: schedule.cron, timezone: schedule.timezone)
                next = expression.nextFire(after: max(round.now, tick), in: zone)
                missed = Self.ticks(of: expression, in: zone, after: tick, upTo: round.now)
                if let next { nextDue = min(nextDue ?? next, next) }
            } catch {
                logger.error("cron schedule cannot be read; pausing it", metadata: ["schedule": "\(schedule.name)", "error": "\(error.message)"])
                _ = try await cron.pause(schedule.name)
                continue
            }
            let report: JSONValue? = missed.count > 0 ? Self.missedReport(schedule, firedTick: tick, missed: missed) : Optional.none
            guard let (jobID, state) = try await cron.fire(
                schedule.name, tick: tick, next: next, job: CronHandlers.runJob(of: schedule, tick: tick), missed: report)
            else {
                continue
            }
            fired += 1
            broker.cron.enqueued(by: schedule, state: state)
            if missed.count > 0 {
                logger.warning("cron schedule fired late; ticks in between skipped", metadata: [
                    "schedule": "\(schedule.name)", "missed": "\(missed.count)",
                ])
            }
            logger.info("cron schedule fired", metadata: [
                "schedule": "\(schedule.name)", "tick": "\(GantryJSON.formatTimestamp(tick))", "job": "\(jobID)",
                "next": "\(next.map(GantryJSON.formatTimestamp) ?? "never")",
            ])
        }
        let wait = nextDue.map { Duration.milliseconds(max(1, Int64(($0.timeIntervalSince(round.now) * 1000).rounded(.up)))) }
        return Round(fired: fired, nextDueIn: wait, moreDue: round.due.count >= Self.batchLimit)
    }

    /// The ticks after `tick` up to `now` that firing `tick` late skips (counted up to a thousand).
    static func ticks(of expression: CronExpression, in zone: TimeZone, after tick: Date, upTo now: Date) -> (count: Int, first: Date?) {
        var count = 0
        var first: Date?
        var cursor = tick
        while count < 1000, let following = expression.nextFire(after: cursor, in: zone), following <= now {
            if first == nil { first = following }
            count += 1
            cursor = following
        }
        return (count, first)
    }

    /// What `cron.missed` says: the schedule fired late, and these ticks will not run.
    static func missedReport(_ schedule: CronSchedule, firedTick: Date, missed: (count: Int, first: Date?)) -> JSONValue {
        var body: JSONObject = [
            "name": .string(schedule.name), "cron": .string(schedule.cron), "timezone": .string(schedule.timezone),
            "fired_tick": .string(GantryJSON.formatTimestamp(firedTick)), "missed": .int(Int64(missed.count)),
        ]
        body["first_missed_tick"] = missed.first.map { .string(GantryJSON.formatTimestamp($0)) }
        return ["schedule": .object(body)]
    }

    func round() async throws -> Duration {
        let done = try await runOnce()
        if done.moreDue { return .zero }
        return min(Self.maxSleep, done.nextDueIn ?? Self.maxSleep)
    }
}
