import Foundation
import GantryProtocol
import Logging

/// `webhooks.*` and the config file's `webhooks:`.
struct WebhookHandlers {
    let broker: Broker

    func upsert(_ params: WebhooksUpsert.Params, source: String = "rpc") async throws -> WebhooksUpsert.Result {
        let (webhook, created) = try await broker.webhookStore.upsert(params, source: source)
        broker.logger.info(created ? "webhook created" : "webhook updated", metadata: [
            "name": "\(params.name)", "events": "\(webhook.events.joined(separator: ","))", "source": "\(source)",
        ])
        return WebhooksUpsert.Result(webhook: webhook, created: created)
    }

    func delete(_ params: WebhookNameParams) async throws -> WebhooksDelete.Result {
        guard try await broker.webhookStore.delete(params.name) else { throw RPCErrorObject.noSuchWebhook(params.name) }
        broker.logger.info("webhook deleted", metadata: ["name": "\(params.name)"])
        return WebhooksDelete.Result(deleted: true)
    }

    func deliveries(_ params: WebhooksDeliveries.Params) async throws -> WebhooksDeliveries.Result {
        guard let deliveries = try await broker.webhookStore.deliveries(params) else { throw RPCErrorObject.noSuchWebhook(params.name) }
        return WebhooksDeliveries.Result(deliveries: deliveries)
    }

    /// Created or updated on start; those an earlier file made and this one no longer names are removed.
    func applyConfigured(_ webhooks: [WebhooksUpsert.Params]) async throws {
        for webhook in webhooks { _ = try await upsert(webhook, source: "config") }
        let removed = try await broker.webhookStore.removeConfigured(except: webhooks.map(\.name))
        if !removed.isEmpty { broker.logger.info("webhooks removed from the config file", metadata: ["webhooks": "\(removed)"]) }
    }
}
