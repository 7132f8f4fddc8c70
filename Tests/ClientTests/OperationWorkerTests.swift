import Foundation
import GantryClient
import GantryProtocol
import GantryTesting
import Synchronization
import Testing

@Suite(.deadline(.seconds(180))) struct OperationWorkerTests {
    /// A Swift worker runs an operation's steps: the first sets a global the third reads, the second fails for
    /// good once, and `retryOperation` resumes at the second: the first never runs again.
    @Test func stepsShareGlobalsAndARetryResumesAtTheFailedStep() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let address = "\(broker.host):\(broker.port)"
        let gantry = try GantryClient(url: address)
        let runs = Mutex<[String]>([])
        let secondShouldFail = Atomic<Bool>(true)
        let readByThird = Mutex<JSONValue?>(nil)
        let worker = try Worker(url: address, queues: ["signup"], concurrency: 2, id: "step-worker")
        worker.registerStep("account.create") { _, operation in
            runs.withLock { $0.append("account.create") }
            #expect(operation.globals["user_id"] == 7)
            return StepOutcome(set: ["account_id": "acc_19"], result: "created")
        }
        worker.registerStep("card.charge") { _, _ in
            runs.withLock { $0.append("card.charge") }
            if secondShouldFail.exchange(false, ordering: .relaxed) { throw PermanentFailure("card declined") }
            return StepOutcome(set: ["charged": true])
        }
        worker.registerStep("receipt.send") { _, operation in
            runs.withLock { $0.append("receipt.send") }
            readByThird.withLock { $0 = operation.globals["account_id"] }
            return StepOutcome()
        }
        let running = Task { try await worker.run() }
        defer {
            worker.stop()
            running.cancel()
        }

        let started = try await gantry.startOperation(
            "signup", branches: ["main": ["account.create", "card.charge", "receipt.send"]], globals: ["user_id": 7], queue: "signup", key: "user-7")
        #expect(started.created)
        #expect(try await eventually { try await gantry.operation(id: started.id).state == .failed })
        let failed = try await gantry.operation(id: started.id)
        #expect(failed.error?["message"] == "card declined")
        #expect(failed.steps?.map(\.state) == [.completed, .failed, .unprocessed])

        let again = try await gantry.startOperation("signup", branches: ["main": ["account.create"]], key: "user-7")
        #expect(again.id == started.id && !again.created, "the same name and key answer the first operation")

        try await gantry.retryOperation(id: started.id)
        #expect(try await eventually { try await gantry.operation(id: started.id).state == .completed })
        #expect(runs.withLock { $0 } == ["account.create", "card.charge", "card.charge", "receipt.send"])
        #expect(readByThird.withLock { $0 } == "acc_19")
        let done = try await gantry.operation(id: started.id)
        #expect(done.globals == ["user_id": 7, "account_id": "acc_19", "charged": true])
        let listed = try await gantry.listOperations(OperationsList.Params(globals: ["account_id": "acc_19"]))
        #expect(listed.operations.map(\.id) == [started.id])
    }

    /// A Swift client publishes; the subscription's job reaches a Swift worker with the payload as its args.
    @Test func aPublishedEventReachesAWorkerThroughItsSubscription() async throws {
        let (url, _) = try await TestPostgres.freshDatabase()
        let broker = try await BrokerProcess(databaseURL: url)
        let address = "\(broker.host):\(broker.port)"
        let gantry = try GantryClient(url: address)
        _ = try await gantry.call(SubscriptionsUpsert.self, SubscriptionsUpsert.Params(
            name: "welcome", event: "user.*", filter: ["verified": true], target: ["type": "welcome.send", "queue": "mail"]))
        let skipped = try await gantry.publish("user.created", payload: ["user_id": 6, "verified": false])
        #expect(skipped.triggered.isEmpty, "the filter leaves it out")
        let published = try await gantry.publish("user.created", payload: ["user_id": 7, "verified": true], key: "user-7")
        #expect(published.triggered.map(\.subscription) == ["welcome"])
        let seen = Mutex<JSONValue?>(nil)
        let worker = try Worker(url: address, queues: ["mail"], concurrency: 1, id: "event-worker")
        worker.register("welcome.send", raw: { job in
            seen.withLock { $0 = job.args }
            return nil
        })
        let running = Task { try await worker.run() }
        defer {
            worker.stop()
            running.cancel()
        }
        #expect(try await eventually { seen.withLock { $0 } != nil })
        #expect(seen.withLock { $0 } == ["user_id": 7, "verified": true])
        #expect(try await gantry.publish("user.created", payload: [:], key: "user-7").duplicate)
    }
}
