import GantryBroker
import GantryProtocol
import GantryTesting
import Testing

@Suite(.deadline(.seconds(60))) struct AccessTests {
    let tokens = [
        AccessToken(name: "web", plain: "web-secret-token-1", role: .producer),
        AccessToken(name: "fleet", plain: "fleet-secret-token", role: .worker, queues: ["mail"]),
        AccessToken(name: "ops", plain: "ops-secret-token-12", role: .admin),
    ]

    @Test func aTokenIsFoundByItsHashAndOnlyAnExactOne() {
        let authenticator = Authenticator(tokens: tokens)
        #expect(authenticator.authenticate("fleet-secret-token")?.name == "fleet")
        #expect(authenticator.authenticate("ops-secret-token-12")?.role == .admin)
        #expect(authenticator.authenticate("fleet-secret-toke") == nil)
        #expect(authenticator.authenticate("fleet-secret-token ") == nil)
        #expect(authenticator.authenticate("") == nil)
        #expect(!Authenticator(tokens: []).isEnabled)
    }

    @Test func rolesCoverTheirMethodsOnly() {
        let producer: Set = ["hello", "enqueue", "enqueue_batch", "jobs.get", "stats"]
        let worker: Set = ["hello", "reserve", "ack", "nack", "extend", "stats"]
        let every = ["hello", "enqueue", "enqueue_batch", "reserve", "ack", "nack", "extend", "jobs.get", "jobs.list", "jobs.retry",
                     "jobs.cancel", "jobs.discard", "stats", "cleanup", "workers.list", "workers.quiet", "workers.stop", "queues.pause",
                     "queues.resume", "queues.list", "queues.configure", "cron.list", "cron.upsert", "cron.delete", "cron.pause",
                     "cron.resume", "cron.trigger"]
        for method in every {
            #expect(Role.producer.mayCall(method) == producer.contains(method), "producer \(method)")
            #expect(Role.worker.mayCall(method) == worker.contains(method), "worker \(method)")
            #expect(Role.admin.mayCall(method), "admin \(method)")
        }
    }

    @Test func digestsReadAsHexRoundTrip() {
        let digest = AccessToken.digest(of: "abc")
        // SHA-256("abc"), the FIPS 180-2 test vector.
        #expect(AccessToken.hex(digest) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(AccessToken.parseDigest(AccessToken.hex(digest)) == digest)
        #expect(AccessToken.parseDigest("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD") == digest)
        #expect(AccessToken.parseDigest("ba78") == nil)
        #expect(AccessToken.parseDigest(String(repeating: "g", count: 64)) == nil)
    }

    @Test func queueLimitsApplyToTheirTokensOnly() {
        #expect(tokens[1].mayUse(queue: "mail"))
        #expect(!tokens[1].mayUse(queue: "billing"))
        #expect(tokens[0].mayUse(queue: "anything"))
    }
}
