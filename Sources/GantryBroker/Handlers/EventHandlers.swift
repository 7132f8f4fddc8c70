import Foundation
import GantryProtocol
import Logging

/// Events and subscriptions: `events.publish`, `.get`, `.list`, `.replay`, `subscriptions.*`, and the config
/// file's `subscriptions:`.
struct EventHandlers {
    let broker: Broker

    func publish(_ params: EventsPublish.Params) async throws -> EventsPublish.Result {
        try broker.checkPayload(params.payload)
        let published = try await broker.eventStore.publish(params)
        if !published.duplicate { log(published) }
        return published
    }

    func replay(_ params: EventIDParams) async throws -> EventsPublish.Result {
        guard let id = Int64(params.id), let published = try await broker.eventStore.replay(id: id) else {
            throw RPCErrorObject.noSuchEvent(params.id)
        }
        broker.logger.info("event replayed", metadata: ["event": "\(params.id)", "as": "\(published.id)", "triggered": "\(published.triggered.count)"])
        log(published)
        return published
    }

    /// What an event started. (Waiting reserves, here and on every broker, hear of its jobs from the NOTIFY
    /// `gantry.publish` sent, delivered on commit.)
    private func log(_ published: EventsPublish.Result) {
        guard !published.triggered.isEmpty else { return }
        broker.logger.info("event published", metadata: [
            "event": "\(published.id)", "triggered": "\(published.triggered.map(\.source).joined(separator: ","))",
        ])
    }

    func get(_ params: EventIDParams) async throws -> Event {
        guard let id = Int64(params.id), let event = try await broker.eventStore.get(id: id) else { throw RPCErrorObject.noSuchEvent(params.id) }
        return event
    }

    func upsert(_ params: SubscriptionsUpsert.Params, source: String = "rpc") async throws -> SubscriptionsUpsert.Result {
        let target = try params.checkedTarget()
        if case .package(let name, let config) = target {
            guard let package = try await broker.packageStore.package(named: name) else { throw RPCErrorObject.noSuchPackage(name, field: "target.package") }
            try PackageHandlers.checkOverrides(config, of: package, field: "target.config")
        }
        let (subscription, created) = try await broker.eventStore.upsert(params, target: target, source: source)
        broker.logger.info(created ? "subscription created" : "subscription updated", metadata: [
            "name": "\(params.name)", "event": "\(params.event)",
        ])
        return SubscriptionsUpsert.Result(subscription: subscription, created: created)
    }

    func delete(_ params: SubscriptionNameParams) async throws -> SubscriptionsDelete.Result {
        guard try await broker.eventStore.deleteSubscription(params.name) else { throw RPCErrorObject.noSuchSubscription(params.name) }
        broker.logger.info("subscription deleted", metadata: ["name": "\(params.name)"])
        return SubscriptionsDelete.Result(deleted: true)
    }

    func setPaused(_ params: SubscriptionNameParams, _ paused: Bool) async throws -> Subscription {
        guard let subscription = try await broker.eventStore.setPaused(params.name, paused) else { throw RPCErrorObject.noSuchSubscription(params.name) }
        broker.logger.info(paused ? "subscription paused" : "subscription resumed", metadata: ["name": "\(params.name)"])
        return subscription
    }

    /// The config file's subscriptions: created or updated on start; those an earlier file made and this one no
    /// longer names are removed.
    func applyConfigured(_ subscriptions: [SubscriptionsUpsert.Params]) async throws {
        for subscription in subscriptions { _ = try await upsert(subscription, source: "config") }
        let removed = try await broker.eventStore.removeConfigured(except: subscriptions.map(\.name))
        if !removed.isEmpty { broker.logger.info("subscriptions removed from the config file", metadata: ["subscriptions": "\(removed)"]) }
    }
}
