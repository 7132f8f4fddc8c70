import Foundation
import GantryClient
import GantryProtocol
import Synchronization

// How many no-op jobs per second one Swift `Worker` completes against a running broker.
//
//     swift run -c release WorkerThroughput [gantry://127.0.0.1:7440] [jobs] [concurrency]
//
// It enqueues the jobs first (in batches of 1,000, into a queue of its own), then times one Worker draining them.

let arguments = CommandLine.arguments
let url = arguments.count > 1 ? arguments[1] : "gantry://127.0.0.1:7440"
let total = arguments.count > 2 ? Int(arguments[2]) ?? 10_000 : 10_000
let concurrency = arguments.count > 3 ? Int(arguments[3]) ?? 32 : 32
let queue = "bench-\(UUID().uuidString.prefix(8).lowercased())"

let client = try GantryClient(url: url, name: "worker-throughput")
let enqueueStarted = ContinuousClock.now
for start in stride(from: 0, to: total, by: 1000) {
    let jobs = (start..<min(start + 1000, total)).map { EnqueueOptions(queue: queue).params(type: "noop", args: [.int(Int64($0))]) }
    try await client.enqueueBatch(jobs)
}
let enqueueTook = ContinuousClock.now - enqueueStarted

let worker = try Worker(url: url, queues: [queue], concurrency: concurrency)
let done = DoneCounter()
worker.register("noop") { (_: JobContext<[Int]>) in done.increment() }
let started = ContinuousClock.now
let running = Task { try await worker.run() }
while done.value < total { try await Task.sleep(for: .milliseconds(20)) }
let took = ContinuousClock.now - started
worker.shutdown()
try await running.value

func perSecond(_ count: Int, _ duration: Duration) -> Int {
    Int(Double(count) / (Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18))
}
print("enqueue_batch of 1,000: \(total) jobs in \(enqueueTook) = \(perSecond(total, enqueueTook)) jobs/s")
print("one Worker, concurrency \(concurrency), no-op handlers: \(total) jobs in \(took) = \(perSecond(total, took)) jobs/s")

final class DoneCounter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
