import Foundation
import GantryBroker
import GantryProtocol
import GantryTesting
import Testing

/// Tokens and roles, the limits on what a connection may cost, and SQL that never takes values as text: each
/// against a real gantryd on a real PostgreSQL, over TCP.
@Suite(.deadline(.seconds(300))) struct SecurityTests {
    static let adminToken = "admin-token-0123456789abcdef"
    static let workerToken = "worker-token-0123456789abcdef"
    static let producerToken = "producer-token-0123456789abcdef"
    static let mailToken = "mail-producer-token-0123456789"

    /// A broker with one token per role from the environment and a queue-limited producer from the file.
    static func brokerWithTokens(_ extra: [String] = []) async throws -> BrokerProcess {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("gantryd-\(UUID().uuidString).yml")
        try Data("""
            tokens:
              - name: mail-app
                role: producer
                queues: [mail]
                sha256: \(AccessToken.hex(AccessToken.digest(of: mailToken)))
            """.utf8).write(to: config)
        let (url, _) = try await TestPostgres.freshDatabase()
        return try await BrokerProcess(
            arguments: ["--database-url", url, "--config", config.path] + extra,
            environment: ["GANTRY_ADMIN_TOKEN": adminToken, "GANTRY_WORKER_TOKEN": workerToken, "GANTRY_PRODUCER_TOKEN": producerToken])
    }

    static func connect(_ broker: BrokerProcess, token: String) async throws -> LineClient {
        let client = try await broker.connect()
        _ = try await client.result("hello", ["client": "security-test", "token": .string(token)])
        return client
    }

    @Test func eachRoleCallsItsMethodsAndIsRefusedTheRest() async throws {
        let broker = try await Self.brokerWithTokens()
        let producer = try await Self.connect(broker, token: Self.producerToken)
        let worker = try await Self.connect(broker, token: Self.workerToken)
        let admin = try await Self.connect(broker, token: Self.adminToken)

        let id = try await enqueue(producer, ["type": "report.build", "queue": "reports"])
        #expect(try await producer.result("jobs.get", ["id": .string(id)])["state"] == "available")
        _ = try await producer.result("stats")
        for (method, params) in [("reserve", ["queues": ["reports"]] as JSONValue), ("ack", ["id": .string(id)]),
                                 ("jobs.list", [:]), ("queues.pause", ["queue": "reports"]), ("cron.list", nil), ("workers.list", nil)] {
            let response = try await producer.call(method, params)
            #expect(response.errorCode == -32009, "producer calling \(method)")
            #expect(response.error?.data?["role"] == "producer")
            #expect(response.error?.data?["method"] == .string(method))
        }

        let jobs = try await reserve(worker, ["reports"])
        #expect(jobs.first?["id"]?.stringValue == id)
        _ = try await worker.result("ack", ["id": .string(id)])
        _ = try await worker.result("stats")
        for method in ["enqueue", "jobs.get", "jobs.retry", "cleanup", "queues.configure"] {
            #expect(try await worker.call(method, ["id": "1", "type": "x", "queue": "q"]).errorCode == -32009, "worker calling \(method)")
        }

        #expect(try await admin.result("jobs.list", ["queue": "reports"])["jobs"]?.arrayValue?.count == 1)
        _ = try await admin.result("queues.pause", ["queue": "reports"])
        _ = try await admin.result("cron.list")
        _ = try await enqueue(admin, ["type": "x"])
    }

    @Test func missingAndUnknownTokensAreUnauthorizedAndThirdFailureCloses() async throws {
        let broker = try await Self.brokerWithTokens()
        let client = try await broker.connect()
        let before = try await client.call("stats")
        #expect(before.errorCode == -32001)
        #expect(before.error?.message.contains("send hello first") == true)
        #expect(try await client.call("hello", ["client": "x"]).errorCode == -32001)
        #expect(try await client.call("hello", ["token": "guess-1"]).errorCode == -32001)
        let third = try await client.call("hello", ["token": "guess-2"])
        #expect(third.errorCode == -32001)
        #expect(third.error?.message.contains("connection is closed") == true)
        #expect(try await client.nextLine(timeout: .seconds(5)) == nil, "the broker closes after the third failure")

        // A good hello after a bad one works, and a token never appears in the log.
        let second = try await broker.connect()
        #expect(try await second.call("hello", ["token": "nope"]).errorCode == -32001)
        _ = try await second.result("hello", ["token": .string(Self.adminToken)])
        _ = try await second.result("stats")
        #expect(!broker.log.contains(Self.adminToken) && !broker.log.contains("guess-1"))
    }

    @Test func aQueueLimitedTokenStaysInItsQueues() async throws {
        let broker = try await Self.brokerWithTokens()
        let mail = try await Self.connect(broker, token: Self.mailToken)
        let admin = try await Self.connect(broker, token: Self.adminToken)
        let mine = try await enqueue(mail, ["type": "email.send", "queue": "mail"])
        let other = try await mail.call("enqueue", ["type": "email.send", "queue": "billing"])
        #expect(other.errorCode == -32009)
        #expect(other.error?.data?["queue"] == "billing")
        let batch = try await mail.call("enqueue_batch", ["jobs": [["type": "a", "queue": "mail"], ["type": "b", "queue": "billing"]]])
        #expect(batch.errorCode == -32009)
        #expect(try await mail.result("jobs.get", ["id": .string(mine)])["queue"] == "mail")
        let theirs = try await enqueue(admin, ["type": "invoice", "queue": "billing"])
        #expect(try await mail.call("jobs.get", ["id": .string(theirs)]).errorCode == -32002, "a job outside its queues does not exist for it")
        #expect(try await admin.result("jobs.list", ["queue": "billing"])["jobs"]?.arrayValue?.count == 1, "the refused batch stored nothing")
    }

    @Test func metricsWantAnAdminTokenProbesDoNot() async throws {
        let broker = try await Self.brokerWithTokens()
        #expect(try await broker.get("/live").status == 200)
        #expect(try await broker.get("/ready").status == 200)
        let bare = try await broker.get("/metrics")
        #expect(bare.status == 401)
        #expect(bare.body.contains("Authorization: Bearer"))
        let asProducer = try await HTTPGet.fetch(host: broker.host, port: broker.httpPort, path: "/metrics",
                                                 headers: ["Authorization": "Bearer \(Self.producerToken)"])
        #expect(asProducer.status == 403)
        let asAdmin = try await HTTPGet.fetch(host: broker.host, port: broker.httpPort, path: "/metrics",
                                              headers: ["Authorization": "Bearer \(Self.adminToken)"])
        #expect(asAdmin.status == 200)
        #expect(asAdmin.body.contains("gantry_connections"))
    }

    @Test func anOpenBrokerStaysOnLoopbackUnlessToldAndBadTokensStopItStarting() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let open = try await runGantryd(["--database-url", url, "--listen", "0.0.0.0:0", "--http", "127.0.0.1:0"])
        #expect(open.status != 0)
        #expect(open.output.contains("would accept anyone") && open.output.contains("--allow-unauthenticated"))
        let told = try await BrokerProcess(arguments: ["--database-url", url, "--listen", "0.0.0.0:0", "--allow-unauthenticated"])
        #expect(told.log.contains("no tokens configured"))
        told.signal(SIGTERM)
        try await told.waitForExit()

        for (entry, complaint) in [("name: a\n    role: admin\n    queues: [x]\n    sha256: \(String(repeating: "a", count: 64))", "admin token limited to queues"),
                                   ("name: b\n    role: producer\n    sha256: 1234", "64 hex digits"),
                                   ("name: c\n    role: boss\n    sha256: \(String(repeating: "b", count: 64))", "producer, worker, viewer or admin")] {
            let config = FileManager.default.temporaryDirectory.appendingPathComponent("gantryd-\(UUID().uuidString).yml")
            try Data("tokens:\n  - \(entry)\n".utf8).write(to: config)
            let refused = try await runGantryd(["--database-url", url, "--config", config.path])
            #expect(refused.status != 0)
            #expect(refused.output.contains(complaint), "\(refused.output.suffix(400))")
        }
    }

    @Test func unauthenticatedConnectionsAreClosedAfterTheAuthenticationTimeout() async throws {
        let broker = try await Self.brokerWithTokens(["--auth-timeout-ms", "500"])
        let silent = try await broker.connect()
        let greeted = try await Self.connect(broker, token: Self.producerToken)
        #expect(try await silent.nextLine(timeout: .seconds(5)) == nil)
        _ = try await greeted.result("stats")
    }

    @Test func connectionLimitsTurnTheExtraOnesAway() async throws {
        let (broker, _) = try await startBroker(["--max-connections-per-address", "3"])
        var clients: [LineClient] = []
        for _ in 0..<3 {
            let client = try await broker.connect()
            _ = try await client.result("stats")
            clients.append(client)
        }
        let extra = try await broker.connect()
        let refusal = try #require(try await extra.nextLine(timeout: .seconds(5)))
        let response = try GantryJSON.makeDecoder().decode(RPCResponse.self, from: Data(refusal.utf8))
        #expect(response.errorCode == -32005)
        #expect(response.error?.message.contains("the limit is 3") == true)
        #expect(try await extra.nextLine(timeout: .seconds(5)) == nil)
        await clients[0].close()
        try await Task.sleep(for: .milliseconds(300))
        let again = try await broker.connect()
        _ = try await again.result("stats")

        let (small, _) = try await startBroker(["--max-connections", "2"])
        let first = try await small.connect()
        let second = try await small.connect()
        _ = try await first.result("stats")
        _ = try await second.result("stats")
        let third = try await small.connect()
        let line = try #require(try await third.nextLine(timeout: .seconds(5)))
        #expect(line.contains("-32005") && line.contains("2 open, the limit is 2"))
    }

    @Test func idleConnectionsCloseButLongPollsDoNot() async throws {
        let (broker, _) = try await startBroker(["--idle-timeout-ms", "1000"])
        let idle = try await broker.connect()
        let polling = try await broker.connect()
        _ = try await idle.result("stats")
        let started = ContinuousClock.now
        let jobs = try await reserve(polling, ["nothing-here"], waitMs: 2500)
        #expect(jobs.isEmpty && ContinuousClock.now - started >= .milliseconds(2400), "the long poll ran to its end")
        #expect(try await idle.nextLine(timeout: .seconds(5)) == nil, "the idle connection was closed")
    }

    @Test func requestLimitsRefuseByField() async throws {
        let (broker, _) = try await startBroker(["--max-wait-ms", "1000", "--max-batch-jobs", "2", "--max-args-bytes", "100"])
        let client = try await broker.connect()
        let wait = try await client.call("reserve", ["queues": ["q"], "wait_ms": 2000])
        #expect(wait.error?.data?["field"] == "wait_ms")
        #expect(wait.error?.message.contains("at most 1000") == true)
        let batch = try await client.call("enqueue_batch", ["jobs": [["type": "a"], ["type": "b"], ["type": "c"]]])
        #expect(batch.error?.data?["field"] == "jobs")
        let big = JSONValue.string(String(repeating: "x", count: 200))
        #expect(try await client.call("enqueue", ["type": "a", "args": [big]]).error?.data?["field"] == "args")
        #expect(try await client.call("enqueue_batch", ["jobs": [["type": "a"], ["type": "b", "args": [big]]]]).error?.data?["field"] == "jobs[1].args")
        _ = try await enqueue(client, ["type": "a", "args": ["small"]])
    }

    @Test func aConnectionWithTooManyRequestsRunningIsReadNoFurther() async throws {
        let (broker, _) = try await startBroker(["--max-in-flight", "2"])
        let client = try await broker.connect()
        try await client.sendRequest("reserve", ["queues": ["empty"], "wait_ms": 1500], id: 1)
        try await client.sendRequest("reserve", ["queues": ["empty"], "wait_ms": 1500], id: 2)
        let sent = ContinuousClock.now
        try await client.sendRequest("stats", nil, id: 3)
        _ = try await client.response(id: 3, timeout: .seconds(10))
        #expect(ContinuousClock.now - sent >= .milliseconds(1200), "stats waited for a reserve to finish")
    }

    @Test func hostileStringsRoundTripAsValues() async throws {
        let (broker, _) = try await startBroker()
        let client = try await broker.connect()
        let hostile = #"x'; DROP TABLE gantry.jobs; -- \" \\ \u{0007} ☃ $1 %s"#
        let params: JSONValue = [
            "type": .string(hostile), "args": [.string(hostile), ["k'\\\"": .string(hostile)]],
            "tags": [.string(hostile)], "unique_key": .string(hostile), "meta": ["note": .string(hostile)],
        ]
        let id = try await enqueue(client, params)
        let job = try await client.result("jobs.get", ["id": .string(id)])
        #expect(job["type"] == .string(hostile))
        #expect(job["args"] == params["args"])
        #expect(job["tags"] == params["tags"])
        #expect(job["unique_key"] == .string(hostile))
        #expect(job["meta"]?["note"] == .string(hostile))
        #expect(try await client.result("jobs.list", ["type": .string(hostile)])["jobs"]?.arrayValue?.count == 1)
        #expect(try await client.result("jobs.list", ["tag": .string(hostile)])["jobs"]?.arrayValue?.count == 1)
        let queue = try await client.call("enqueue", ["type": "x", "queue": .string(hostile)])
        #expect(queue.error?.data?["field"] == "queue", "queue names are identifiers, refused before any SQL")
        #expect(try await client.result("stats")["queues"]?["default"] != nil, "the jobs table is still there")
    }

    @Test func gantryTokenNewMakesATokenTheBrokerAcceptsOverTLS() async throws {
        let made = try await runBuiltTool("gantry", ["token", "new", "--name", "fleet", "--role", "worker", "--queue", "mail"])
        #expect(made.status == 0)
        let lines = made.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let token = try #require(lines.first { $0.hasPrefix("token:") }?.split(separator: " ").last.map(String.init))
        let entry = try #require(made.output.range(of: "tokens:\n").map { String(made.output[$0.lowerBound...]) })
        #expect(entry.contains("queues: [mail]") && entry.contains("role: worker"))
        #expect(!entry.contains(token), "the file entry holds only the hash")

        let certificates = try await TestCertificates.shared
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("gantryd-\(UUID().uuidString).yml")
        try Data((entry + "tls_cert: \(certificates.serverCertificate)\ntls_key: \(certificates.serverKey)\n").utf8).write(to: config)
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(arguments: ["--database-url", url, "--config", config.path])
        let address = "gantrys://127.0.0.1:\(broker.port)"
        let stats = try await runBuiltTool("gantry", ["stats", "--broker", address, "--token", token, "--ca-file", certificates.caFile])
        #expect(stats.status == 0, "\(stats.output)")
        let untrusted = try await runBuiltTool("gantry", ["stats", "--broker", address, "--token", token])
        #expect(untrusted.status == 3)
        #expect(untrusted.output.contains("TLS with the broker failed"))
        let refused = try await runBuiltTool("gantry", ["jobs", "--broker", address, "--ca-file", certificates.caFile], environment: ["GANTRY_TOKEN": token])
        #expect(refused.status == 1)
        #expect(refused.output.contains("role worker"))
        let hashed = try await runBuiltTool("gantry", ["token", "hash"], stdin: token)
        #expect(entry.contains(hashed.output.trimmingCharacters(in: .whitespacesAndNewlines)))
    }
}
