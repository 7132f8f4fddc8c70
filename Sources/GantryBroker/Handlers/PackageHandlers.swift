import Foundation
import GantryProtocol
import Logging

/// Packages and executions: `packages.*`, `executions.*`, and the config file's `packages:`.
struct PackageHandlers {
    let broker: Broker

    func upsert(_ params: PackagesUpsert.Params, source: String = "rpc") async throws -> PackagesUpsert.Result {
        let (steps, triggers) = try params.checked()
        try broker.checkPayload(params.config, field: "config")
        let next = try Self.schedule(of: triggers).flatMap { expression, zone in expression.nextFire(after: Date(), in: zone) }
        let (package, created) = try await broker.packageStore.upsert(params, steps: steps, triggers: triggers, nextRunAt: next, source: source)
        broker.logger.info(created ? "package created" : "package updated", metadata: [
            "package": "\(params.name)", "steps": "\(steps.count)", "cron": "\(triggers.cron ?? "none")",
            "events": "\(triggers.events.joined(separator: ","))", "active": "\(params.active)", "source": "\(source)",
        ])
        return PackagesUpsert.Result(package: package, created: created)
    }

    /// The package's cron expression and time zone, checked (nil without a cron trigger).
    static func schedule(of triggers: PackageTriggers) throws(RPCErrorObject) -> (CronExpression, TimeZone)? {
        guard let cron = triggers.cron else {
            guard TimeZone(identifier: triggers.timezone) != nil else {
                throw .invalidParams(field: "triggers.timezone", "\"\(triggers.timezone.prefix(60))\" is not a time zone this broker knows; use an IANA name such as Europe/Berlin or UTC")
            }
            return nil
        }
        return try CronHandlers.parseSchedule(cron: cron, timezone: triggers.timezone, cronField: "triggers.cron", timezoneField: "triggers.timezone")
    }

    func get(_ params: PackageNameParams) async throws -> Package {
        guard let package = try await broker.packageStore.package(named: params.name) else { throw RPCErrorObject.noSuchPackage(params.name) }
        return package
    }

    func delete(_ params: PackageNameParams) async throws -> PackagesDelete.Result {
        switch try await broker.packageStore.delete(params.name) {
        case .notFound: throw RPCErrorObject.noSuchPackage(params.name)
        case .targeted(let subscriptions):
            throw RPCErrorObject(
                .wrongState,
                "Package \(params.name) is the target of subscription\(subscriptions.count == 1 ? "" : "s") \(subscriptions.joined(separator: ", ")); delete or retarget \(subscriptions.count == 1 ? "it" : "them") first.",
                data: ["name": .string(params.name), "subscriptions": .array(subscriptions.map(JSONValue.string))])
        case .deleted:
            broker.logger.info("package deleted", metadata: ["package": "\(params.name)"])
            return PackagesDelete.Result(deleted: true)
        }
    }

    /// A run by hand (`packages.run`, the dashboard's Run): refused for an inactive package, one that takes no
    /// manual runs, and config keys the package does not have (a typo would otherwise run with the default
    /// silently). With `session`, a token limited to queues starts only packages whose steps all go to its
    /// queues, as for `operations.start`.
    func run(_ params: PackagesRun.Params, session: Session?) async throws -> PackagesRun.Result {
        guard let package = try await broker.packageStore.package(named: params.name) else { throw RPCErrorObject.noSuchPackage(params.name) }
        if let session {
            try broker.checkQueues(OperationPlan(branches: [OperationPlan.mainBranch: package.steps]).queues, method: PackagesRun.name, session: session)
        }
        guard package.active else {
            throw RPCErrorObject(.wrongState, "Package \(params.name) is inactive; packages.upsert with active: true turns it on.", data: ["name": .string(params.name)])
        }
        guard package.triggers.manual else {
            throw RPCErrorObject(
                .wrongState, "Package \(params.name) takes no runs by hand (its triggers.manual is false); it runs by its cron schedule or events.",
                data: ["name": .string(params.name)])
        }
        try Self.checkOverrides(params.config, of: package, field: "config")
        guard let id = try await broker.packageStore.run(params.name, overrides: params.config, startedBy: .manual) else {
            throw RPCErrorObject.noSuchPackage(params.name)
        }
        broker.metrics.operationStarted(name: params.name)
        broker.logger.info("package run", metadata: ["package": "\(params.name)", "execution": "\(id)", "by": "hand"])
        return PackagesRun.Result(id: String(id), package: params.name, state: .running)
    }

    static func checkOverrides(_ overrides: JSONValue?, of package: Package, field: String) throws(RPCErrorObject) {
        guard let keys = overrides?.objectValue?.keys, let known = package.config.objectValue else { return }
        if let unknown = keys.first(where: { known[$0] == nil }) {
            let listed = known.keys.isEmpty ? "it has none" : "its keys: " + known.keys.joined(separator: ", ")
            throw .invalidParams(field: "\(field).\(unknown)", "is not a key of package \(package.name)'s config (\(listed)); packages.upsert adds keys")
        }
    }

    /// A deleted package's executions stay listed until cleanup; a name with neither is a mistake worth saying.
    func executions(_ params: PackagesExecutions.Params) async throws -> PackagesExecutions.Result {
        let page = try await broker.packageStore.executions(params)
        if page.executions.isEmpty, params.cursor == nil, try await broker.packageStore.package(named: params.name) == nil {
            throw RPCErrorObject.noSuchPackage(params.name)
        }
        return page
    }

    func save(_ params: ExecutionsSave.Params) async throws -> Execution {
        guard let id = Int64(params.id) else { throw RPCErrorObject.noSuchExecution(params.id) }
        switch try await broker.packageStore.save(id: id, name: params.name, description: params.description) {
        case .notFound: throw RPCErrorObject.noSuchExecution(params.id)
        case .nameTaken(let other):
            throw RPCErrorObject.invalidParams(field: "name", "is already the name of saved execution \(other) of this package; choose another name")
        case .saved(let execution):
            broker.logger.info("execution saved", metadata: ["execution": "\(params.id)", "package": "\(execution.package)", "name": "\(params.name)"])
            return execution
        }
    }

    func saved(_ params: ExecutionsSaved.Params) async throws -> ExecutionsSaved.Result {
        ExecutionsSaved.Result(executions: try await broker.packageStore.saved(package: params.package))
    }

    /// The config file's packages: created or updated on start; those an earlier file made and this one no
    /// longer names are removed (unless a subscription still targets one: that is logged, and it stays).
    func applyConfigured(_ packages: [PackagesUpsert.Params]) async throws {
        for package in packages { _ = try await upsert(package, source: "config") }
        let named = Set(packages.map(\.name))
        for name in try await broker.packageStore.configuredNames() where !named.contains(name) {
            switch try await broker.packageStore.delete(name) {
            case .deleted: broker.logger.info("package removed from the config file", metadata: ["package": "\(name)"])
            case .notFound: break
            case .targeted(let subscriptions):
                broker.logger.warning("package left out of the config file stays: subscriptions target it", metadata: [
                    "package": "\(name)", "subscriptions": "\(subscriptions.joined(separator: ","))",
                ])
            }
        }
    }
}
