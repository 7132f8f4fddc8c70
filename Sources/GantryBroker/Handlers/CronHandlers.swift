import Foundation
import GantryProtocol
import Logging

/// Cron schedules as operators steer them, and the config file's schedules. The chore that fires due ticks is
/// `Maintenance/CronEnqueuer`.
public struct CronHandlers {
    let broker: Broker

    /// Reads a schedule's expression and zone, or says which is wrong (an expression that never fires included,
    /// so a config file holding one is refused before the broker serves).
    public static func parseSchedule(cron: String, timezone: String, cronField: String = "cron", timezoneField: String = "timezone") throws(RPCErrorObject) -> (CronExpression, TimeZone) {
        let expression: CronExpression
        do { expression = try CronExpression(cron) } catch { throw .invalidParams(field: cronField, "is not valid: \(error.problem)") }
        guard let zone = TimeZone(identifier: timezone) else {
            throw .invalidParams(field: timezoneField, "\"\(timezone.prefix(60))\" is not a time zone this broker knows; use an IANA name such as Europe/Berlin or UTC")
        }
        guard expression.nextFire(after: Date(), in: zone) != nil else {
            throw .invalidParams(field: cronField, "never fires: no date in the next eight years matches \"\(cron)\"")
        }
        return (expression, zone)
    }

    /// The job one run of a schedule enqueues; `meta` says which schedule and tick (or that it was triggered).
    static func runJob(of schedule: CronSchedule, tick: Date?) -> Enqueue.Params {
        var meta: JSONObject = ["cron": .string(schedule.name)]
        if let tick { meta["cron_tick"] = .string(GantryJSON.formatTimestamp(tick)) } else { meta["cron_trigger"] = true }
        return Enqueue.Params(type: schedule.type, args: schedule.args, queue: schedule.queue, priority: schedule.priority, meta: .object(meta))
    }

    func upsert(_ params: CronUpsert.Params, source: SettingSource = .rpc) async throws -> CronUpsert.Result {
        let (expression, zone) = try Self.parseSchedule(cron: params.cron, timezone: params.timezone)
        try broker.knownTypeSchemas.check([Enqueue.Params(type: params.type, args: params.args)])
        let next = expression.nextFire(after: Date(), in: zone)
        let (schedule, created) = try await broker.cronStore.upsert(params, source: source, nextRunAt: next)
        broker.logger.info(created ? "cron schedule created" : "cron schedule updated", metadata: [
            "schedule": "\(params.name)", "cron": "\(params.cron)", "timezone": "\(params.timezone)", "source": "\(source.rawValue)",
        ])
        return CronUpsert.Result(schedule: schedule, created: created)
    }

    func delete(_ params: CronNameParams) async throws -> CronDelete.Result {
        guard try await broker.cronStore.delete(params.name) else { throw RPCErrorObject.noSuchSchedule(params.name) }
        broker.logger.info("cron schedule deleted", metadata: ["schedule": "\(params.name)"])
        return CronDelete.Result(deleted: true)
    }

    func pause(_ params: CronNameParams) async throws -> CronPause.Result {
        guard let schedule = try await broker.cronStore.pause(params.name) else { throw RPCErrorObject.noSuchSchedule(params.name) }
        broker.logger.info("cron schedule paused", metadata: ["schedule": "\(params.name)"])
        return CronPause.Result(schedule: schedule)
    }

    func resume(_ params: CronNameParams) async throws -> CronResume.Result {
        guard let current = try await broker.cronStore.schedule(named: params.name) else { throw RPCErrorObject.noSuchSchedule(params.name) }
        let (expression, zone) = try Self.parseSchedule(cron: current.cron, timezone: current.timezone)
        guard let schedule = try await broker.cronStore.resume(params.name, nextRunAt: expression.nextFire(after: Date(), in: zone)) else {
            throw RPCErrorObject.noSuchSchedule(params.name)
        }
        broker.logger.info("cron schedule resumed", metadata: ["schedule": "\(params.name)"])
        return CronResume.Result(schedule: schedule)
    }

    func trigger(_ params: CronNameParams) async throws -> CronTrigger.Result {
        guard let (jobID, state, schedule) = try await broker.cronStore.trigger(params.name, job: { Self.runJob(of: $0, tick: nil) }) else {
            throw RPCErrorObject.noSuchSchedule(params.name)
        }
        enqueued(by: schedule, state: state)
        broker.logger.info("cron schedule triggered", metadata: ["schedule": "\(params.name)", "job": "\(jobID)"])
        return CronTrigger.Result(id: String(jobID), schedule: schedule)
    }

    /// Counts the job a schedule made and wakes a waiting reserve when it can run now.
    func enqueued(by schedule: CronSchedule, state: JobState) {
        broker.metrics.count(.enqueued, queue: schedule.queue, type: schedule.type)
        if state == .available { broker.parkedReserves.jobsAvailable([schedule.queue: 1]) }
    }

    /// The config file's schedules: created or updated on start; schedules an earlier file made and this one no
    /// longer names are removed.
    func applyConfigured(_ schedules: [CronUpsert.Params]) async throws {
        for schedule in schedules { _ = try await upsert(schedule, source: .config) }
        let removed = try await broker.cronStore.removeConfigured(except: schedules.map(\.name))
        if !removed.isEmpty { broker.logger.info("cron schedules removed from the config file", metadata: ["schedules": "\(removed)"]) }
    }
}
