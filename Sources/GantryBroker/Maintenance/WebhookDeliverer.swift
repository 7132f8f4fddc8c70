import AsyncHTTPClient
import Crypto
import Foundation
import GantryProtocol
import Logging
import NIOCore
import NIOHTTP1

/// POSTs due webhook deliveries from the outbox, a few at once, off the job path: a slow or dead receiver holds
/// up only its own deliveries. Each attempt is signed (`X-Gantry-Signature: sha256=<hex HMAC-SHA256 of the body
/// with the webhook's secret>`) and carries the delivery's id (`X-Gantry-Delivery`), the same on every retry; a
/// 2xx delivers it, anything else is retried with backoff (kept across restarts: the outbox is in PostgreSQL).
struct WebhookDeliverer {
    static let batchLimit = 16
    static let requestTimeout: TimeAmount = .seconds(10)
    /// How long a claimed delivery is left to this broker before another may try it.
    static let claimSeconds = 60
    static let idleSleep: Duration = .seconds(1)

    let broker: Broker
    var client: HTTPClient = .shared

    struct Round {
        var delivered: Int
        var failed: Int
        var claimed: Int
    }

    @discardableResult
    func runOnce() async throws -> Round {
        let store = broker.webhookStore
        let due = try await store.claimDue(limit: Self.batchLimit, leaseSeconds: Self.claimSeconds)
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for delivery in due { group.addTask { await attempt(delivery) } }
            var results: [Bool] = []
            for await delivered in group { results.append(delivered) }
            return results
        }
        let delivered = outcomes.filter { $0 }.count
        return Round(delivered: delivered, failed: outcomes.count - delivered, claimed: due.count)
    }

    func round() async throws -> Duration {
        let done = try await runOnce()
        return done.claimed >= Self.batchLimit ? .zero : Self.idleSleep
    }

    /// When the `attempts`-th failure is retried: 2 s, 4 s, 8 s … capped at an hour; nil once it gives up.
    static func retryDelay(afterAttempt attempts: Int) -> Duration? {
        guard attempts < WebhookStore.maxAttempts else { return nil }
        return .seconds(min(3600, 1 << min(attempts, 12)))
    }

    static func signature(of body: String, secret: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + code.map { String(format: "%02x", $0) }.joined()
    }

    /// One POST; records what happened and answers whether it was delivered.
    private func attempt(_ delivery: WebhookStore.Due) async -> Bool {
        var request = HTTPClientRequest(url: delivery.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "gantry-webhooks")
        request.headers.add(name: "X-Gantry-Event", value: delivery.event)
        request.headers.add(name: "X-Gantry-Delivery", value: delivery.id)
        request.headers.add(name: "X-Gantry-Signature", value: Self.signature(of: delivery.body, secret: delivery.secret))
        request.body = .bytes(ByteBuffer(string: delivery.body))
        var status: Int?
        var answer: String?
        var problem: String?
        do {
            let response = try await client.execute(request, timeout: Self.requestTimeout)
            status = Int(response.status.code)
            let body = try await response.body.collect(upTo: 64 * 1024)
            answer = String(buffer: body).prefix(1000).description
        } catch {
            problem = "\(error)".prefix(500).description
        }
        let delivered = status.map { (200..<300).contains($0) } ?? false
        let retryIn = delivered ? nil : Self.retryDelay(afterAttempt: delivery.attempts + 1)
        do {
            try await broker.webhookStore.record(
                id: delivery.id, delivered: delivered, status: status, response: answer,
                error: problem ?? (delivered ? nil : "the receiver answered \(status ?? 0)"), retryIn: retryIn)
        } catch {
            broker.logger.warning("could not record a webhook attempt; it will be tried again", metadata: ["delivery": "\(delivery.id)", "error": "\(error)"])
        }
        if delivered {
            broker.logger.debug("webhook delivered", metadata: ["webhook": "\(delivery.webhook)", "delivery": "\(delivery.id)"])
        } else {
            broker.logger.warning(retryIn == nil ? "webhook delivery given up" : "webhook delivery failed; will retry", metadata: [
                "webhook": "\(delivery.webhook)", "delivery": "\(delivery.id)", "attempt": "\(delivery.attempts + 1)",
                "status": "\(status.map(String.init) ?? "none")", "error": "\(problem ?? "")",
            ])
        }
        return delivered
    }
}
