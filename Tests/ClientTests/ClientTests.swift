import Foundation
import GantryBroker
import GantryClient
import GantryProtocol
import GantryTesting
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

struct Email: Codable, Sendable, Equatable {
    var to: String
    var subject: String
}

/// The Swift client against a real gantryd.
@Suite(.deadline(.seconds(300))) struct ClientTests {
    func broker(_ arguments: [String] = []) async throws -> BrokerProcess {
        let (url, _) = try await TestPostgres.freshDatabase()
        return try await BrokerProcess(databaseURL: url, extraArguments: arguments)
    }

    @Test func typedEnqueueAndReadBack() async throws {
        let broker = try await broker()
        let gantry = try GantryClient(url: "gantry://\(broker.host):\(broker.port)", name: "client-test")
        let email = Email(to: "ana@example.com", subject: "Welcome")
        let id = try await gantry.enqueue("email.send", args: email, options: EnqueueOptions(queue: "mail", priority: 5, tags: ["signup"]))
        let job = try await gantry.job(id: id)
        #expect(job.type == "email.send")
        #expect(job.queue == "mail")
        #expect(job.priority == 5)
        #expect(job.args == ["to": "ana@example.com", "subject": "Welcome"])
        #expect(job.state == .available)
        let stats = try await gantry.stats()
        #expect(stats.queues["mail"]?.counts["available"] == 1)
        let raw = try await gantry.call(method: "jobs.get", params: ["id": .string(id)])
        #expect(raw["tags"] == ["signup"])
    }

    @Test func errorsCarryTheBrokersCodeAndField() async throws {
        let broker = try await broker()
        let gantry = try GantryClient(url: "\(broker.host):\(broker.port)")
        do {
            _ = try await gantry.enqueue("x", args: [1], options: EnqueueOptions(priority: 0))
            Issue.record("priority 0 was accepted")
        } catch let error as RPCErrorObject {
            #expect(error.code == -32602)
            #expect(error.name == "invalid_params")
            #expect(error.data?["field"] == "priority")
        }
        await #expect(throws: RPCErrorObject.self) { _ = try await gantry.job(id: "999999") }
        #expect(throws: GantryClient.InvalidURL.self) { _ = try GantryClient(url: "gantry://host:notaport") }
        #expect(throws: GantryClient.InvalidURL.self) { _ = try Worker(url: "gantry://:7440", queues: ["q"]) }
        #expect(throws: InvalidWorkerSettings.self) { _ = try Worker(queues: []) }
        #expect(throws: InvalidWorkerSettings.self) { _ = try Worker(queues: ["q"], concurrency: 0) }
    }

    @Test func oneClientPipelinesManyTasks() async throws {
        let broker = try await broker()
        let gantry = try GantryClient(url: "\(broker.host):\(broker.port)")
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<200 { group.addTask { try await gantry.enqueue("n", args: [index]) } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(Set(ids).count == 200)
        #expect(try await gantry.stats().broker.connections == 1, "all on one connection")
    }

    @Test func reconnectsWhenTheBrokerComesBack() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let port = try freePort()
        let first = try await BrokerProcess(databaseURL: url, extraArguments: ["--listen", "127.0.0.1:\(port)"])
        let gantry = try GantryClient(url: "127.0.0.1:\(port)")
        let before = try await gantry.enqueue("x", args: ["before"])
        first.signal(SIGTERM)
        try await first.waitForExit()
        let second = try await BrokerProcess(databaseURL: url, extraArguments: ["--listen", "127.0.0.1:\(port)"])
        _ = second
        // The first call after the drop may fail (its connection is gone); the next one reconnects.
        var after: String?
        for _ in 0..<3 where after == nil { after = try? await gantry.enqueue("x", args: ["after"]) }
        #expect(after != nil)
        #expect(try await gantry.job(id: before).state == .available)
    }

    @Test func aShortDatabaseOutageIsADelayNotAnError() async throws {
        let postgres = try await TestPostgres.privateCluster()
        defer {
            postgres.stop()
            try? FileManager.default.removeItem(at: postgres.directory)
        }
        let broker = try await BrokerProcess(databaseURL: postgres.url(database: "gantry"), extraArguments: ["--storage-timeout-ms", "300"])
        let gantry = try GantryClient(url: "\(broker.host):\(broker.port)")
        _ = try await gantry.stats()
        postgres.stop()
        // The broker answers storage_unavailable (nothing applied) while PostgreSQL is away; the client resends.
        let enqueued = Task { try await gantry.enqueue("during.outage", args: [1]) }
        try await Task.sleep(for: .seconds(2))
        _ = try await postgres.start()
        let id = try await enqueued.value
        #expect(try await gantry.job(id: id).state == .available)
        #expect(broker.log.contains("storage unavailable"), "the broker did refuse it meanwhile")
    }

    func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
