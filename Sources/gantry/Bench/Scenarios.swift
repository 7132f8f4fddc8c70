import Foundation
import GantryClient
import GantryProtocol
import Synchronization

/// What every scenario needs: where the broker is, how big to make the load, and a queue of its own.
struct BenchSettings: Sendable {
    var url: String
    var connections: Int
    var scale: Double
    var runID = UUID().uuidString.prefix(8).lowercased()

    func queue(_ scenario: String) -> String { "bench-\(runID)-\(scenario)" }
    func jobs(_ full: Int) -> Int { max(100, Int(Double(full) * scale)) }
    func client(_ name: String) throws -> GantryClient { try GantryClient(url: url, name: "gantry-bench-\(name)", patience: .seconds(10)) }
    func clients(_ count: Int, _ name: String) throws -> [GantryClient] { try (0..<count).map { _ in try client(name) } }
}

/// Splits `total` jobs over `parts` workers as evenly as it goes.
func share(of total: Int, part: Int, of parts: Int) -> Int { total / parts + (part < total % parts ? 1 : 0) }

func closeAll(_ clients: [GantryClient]) async { for client in clients { await client.close() } }

/// When each job got somewhere, by id.
final class Moments: Sendable {
    private let moments = Mutex<[String: ContinuousClock.Instant]>([:])
    func note(_ id: String, _ moment: ContinuousClock.Instant) { moments.withLock { $0[id] = moment } }
    var all: [String: ContinuousClock.Instant] { moments.withLock { $0 } }
}

/// The moment a shared count reached its total.
final class FinishLine: Sendable {
    private let reached = Mutex<ContinuousClock.Instant?>(nil)
    let total: Int
    let progress = Progress()
    init(total: Int) { self.total = total }

    func add(_ count: Int = 1) {
        progress.add(count)
        if progress.value >= total { reached.withLock { if $0 == nil { $0 = .now } } }
    }

    var isReached: Bool { progress.value >= total }
    var at: ContinuousClock.Instant? { reached.withLock { $0 } }
}

enum Scenarios {
    static func noop(_ queue: String, args: JSONValue = .emptyArray) -> Enqueue.Params {
        Enqueue.Params(type: "bench.noop", args: args, queue: queue)
    }

    /// Many connections, each enqueueing one job per request, one request in flight each.
    static func enqueueOneAtATime(_ settings: BenchSettings, queue: String, total: Int) async throws -> BenchResult {
        let clients = try settings.clients(settings.connections, "producer")
        let latencies = Latencies()
        let progress = Progress()
        let started = ContinuousClock.now
        try await withProgressLine("enqueue", total: total, progress: progress) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, client) in clients.enumerated() {
                    group.addTask {
                        for _ in 0..<share(of: total, part: index, of: clients.count) {
                            let sent = ContinuousClock.now
                            _ = try await client.call(Enqueue.self, noop(queue))
                            latencies.record(.now - sent)
                            progress.add()
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        let took = (ContinuousClock.now - started).seconds
        await closeAll(clients)
        return BenchResult(
            scenario: "enqueue, 1 job per request, \(clients.count) connections", jobs: total, seconds: took,
            jobsPerSecond: Double(total) / took, p50Ms: latencies.milliseconds(at: 50), p99Ms: latencies.milliseconds(at: 99),
            target: "≥ 20,000 jobs/s", met: Double(total) / took >= 20_000)
    }

    /// `enqueue_batch` of 1,000 from a few connections at once.
    static func enqueueBatches(_ settings: BenchSettings, queue: String, total: Int, connections: Int = 4) async throws -> BenchResult {
        let clients = try settings.clients(connections, "batcher")
        let latencies = Latencies()
        let progress = Progress()
        let batches = (total + 999) / 1000
        let started = ContinuousClock.now
        try await withProgressLine("enqueue_batch", total: total, progress: progress) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, client) in clients.enumerated() {
                    group.addTask {
                        for _ in 0..<share(of: batches, part: index, of: clients.count) {
                            let jobs = Array(repeating: noop(queue), count: 1000)
                            let sent = ContinuousClock.now
                            _ = try await client.call(EnqueueBatch.self, EnqueueBatch.Params(jobs: jobs))
                            latencies.record(.now - sent)
                            progress.add(jobs.count)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        let took = (ContinuousClock.now - started).seconds
        let jobs = batches * 1000
        await closeAll(clients)
        return BenchResult(
            scenario: "enqueue_batch of 1,000, \(connections) connections", jobs: jobs, seconds: took,
            jobsPerSecond: Double(jobs) / took, p50Ms: latencies.milliseconds(at: 50), p99Ms: latencies.milliseconds(at: 99),
            target: "≥ 100,000 jobs/s", met: Double(jobs) / took >= 100_000, note: "latency per batch")
    }

    /// How a drain acks what it reserved.
    enum AckStyle: String, Sendable {
        /// One `ack` per job, all in flight at once.
        case pipelined
        /// One `ack` with `ids` per reserve.
        case ids
    }

    /// Fills `queue` with `total` jobs, by `enqueue_batch` (for a drain that needs a backlog of its own).
    static func fill(_ settings: BenchSettings, queue: String, total: Int) async throws {
        let client = try settings.client("filler")
        var left = total
        while left > 0 {
            let count = min(1000, left)
            _ = try await client.call(EnqueueBatch.self, EnqueueBatch.Params(jobs: Array(repeating: noop(queue), count: count)))
            left -= count
        }
        await client.close()
    }

    /// Workers reserving up to `batch` at a time and acking what they got, until `queue` is empty.
    static func drain(_ settings: BenchSettings, queue: String, total: Int, workers: Int = 8, batch: Int = 100,
                      acks style: AckStyle = .pipelined) async throws -> BenchResult {
        let clients = try settings.clients(workers, "drainer")
        let finish = FinishLine(total: total)
        let started = ContinuousClock.now
        try await withProgressLine("drain", total: total, progress: finish.progress) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in clients {
                    group.addTask {
                        while !finish.isReached {
                            let jobs = try await client.call(Reserve.self, Reserve.Params(queues: [queue], max: batch, waitMs: 200)).jobs
                            switch style {
                            case .pipelined:
                                try await withThrowingTaskGroup(of: Void.self) { acks in
                                    for job in jobs { acks.addTask { _ = try await client.call(Ack.self, Ack.Params(id: job.id)) } }
                                    try await acks.waitForAll()
                                }
                            case .ids:
                                if !jobs.isEmpty { _ = try await client.call(Ack.self, Ack.Params(ids: jobs.map(\.id))) }
                            }
                            finish.add(jobs.count)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        let took = ((finish.at ?? .now) - started).seconds
        await closeAll(clients)
        return BenchResult(
            scenario: "drain a \(total)-job backlog, reserve max \(batch) + \(style == .ids ? "one ack of ids" : "pipelined acks"), \(workers) workers",
            jobs: total, seconds: took,
            jobsPerSecond: Double(total) / took, target: "≥ 30,000 jobs/s", met: Double(total) / took >= 30_000)
    }

    /// Producers enqueueing one job per request while as many workers reserve one and ack it; latency is from
    /// the enqueue being sent to its ack being answered.
    static func endToEnd(_ settings: BenchSettings, queue: String, total: Int, label: String = "end to end", target: String = "≥ 10,000 jobs/s",
                         required: Double = 10_000) async throws -> BenchResult {
        let producers = try settings.clients(settings.connections, "producer")
        let workers = try settings.clients(settings.connections, "worker")
        let finish = FinishLine(total: total)
        let latencies = Latencies()
        let origin = ContinuousClock.now
        let started = ContinuousClock.now
        try await withProgressLine(label, total: total, progress: finish.progress) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, client) in producers.enumerated() {
                    group.addTask {
                        for _ in 0..<share(of: total, part: index, of: producers.count) {
                            try await enqueueStamped(client, queue: queue, origin: origin)
                        }
                    }
                }
                for client in workers {
                    group.addTask { try await workOneAtATime(client, queue: queue, origin: origin, finish: finish, latencies: latencies) }
                }
                try await group.waitForAll()
            }
        }
        let took = ((finish.at ?? .now) - started).seconds
        await closeAll(producers + workers)
        return BenchResult(
            scenario: "\(label): enqueue 1, reserve max 1, ack 1; \(producers.count) producers, \(workers.count) workers", jobs: total,
            seconds: took, jobsPerSecond: Double(total) / took, p50Ms: latencies.milliseconds(at: 50),
            p99Ms: latencies.milliseconds(at: 99), target: target, met: Double(total) / took >= required,
            note: "latency: enqueue sent → ack answered")
    }

    /// One idle worker long-polling while a producer enqueues a job every 5 ms; latency is from the enqueue's
    /// answer (the commit) to the reserve's answer.
    static func wakeUp(_ settings: BenchSettings, queue: String, total: Int) async throws -> BenchResult {
        let producer = try settings.client("producer")
        let worker = try settings.client("worker")
        let committed = Moments()
        let delivered = Moments()
        let finish = FinishLine(total: total)
        // The worker is already waiting when the first job comes.
        _ = try await worker.call(Stats.self, NoParams())
        let started = ContinuousClock.now
        try await withProgressLine("wake-up", total: total, progress: finish.progress) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Like a Worker with handlers running beside its reserves: the ack goes out on the same pipelined
                    // connection while the next reserve already waits, so what is measured is the wake-up itself.
                    try await withThrowingTaskGroup(of: Void.self) { acks in
                        while !finish.isReached {
                            let jobs = try await worker.call(Reserve.self, Reserve.Params(queues: [queue], max: 1, waitMs: 1000)).jobs
                            let now = ContinuousClock.now
                            for job in jobs {
                                delivered.note(job.id, now)
                                finish.add()
                                acks.addTask { _ = try await worker.call(Ack.self, Ack.Params(id: job.id)) }
                            }
                        }
                        try await acks.waitForAll()
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(100))
                    let first = ContinuousClock.now
                    for index in 0..<total {
                        try await Task.sleep(until: first + .milliseconds(5 * index))
                        let id = try await producer.call(Enqueue.self, noop(queue)).id
                        let now = ContinuousClock.now
                        committed.note(id, now)
                    }
                }
                try await group.waitForAll()
            }
        }
        let took = (ContinuousClock.now - started).seconds
        let latencies = Latencies()
        let (commits, deliveries) = (committed.all, delivered.all)
        for (id, at) in deliveries { if let commit = commits[id] { latencies.record(at - commit) } }
        await closeAll([producer, worker])
        let p50 = latencies.milliseconds(at: 50)
        let p99 = latencies.milliseconds(at: 99)
        return BenchResult(
            scenario: "wake-up, idle long-poll, jobs 5 ms apart", jobs: total, seconds: took, p50Ms: p50, p99Ms: p99,
            target: "p50 ≤ 1 ms, p99 ≤ 5 ms", met: (p50 ?? .infinity) <= 1 && (p99 ?? .infinity) <= 5,
            note: "latency: enqueue answered → reserve answered (a reserve answered first counts 0)")
    }

    /// Enqueues one job whose args carry the moment it was sent (nanoseconds since `origin`).
    static func enqueueStamped(_ client: GantryClient, queue: String, origin: ContinuousClock.Instant) async throws {
        let sentAt = (ContinuousClock.now - origin).components
        let stamp = JSONValue.int(sentAt.seconds * 1_000_000_000 + sentAt.attoseconds / 1_000_000_000)
        _ = try await client.call(Enqueue.self, noop(queue, args: [stamp]))
    }

    /// A worker that reserves one job at a time and acks it until `finish` is reached, recording each job's time
    /// from its stamp (`enqueueStamped`) to its ack's answer.
    static func workOneAtATime(_ client: GantryClient, queue: String, origin: ContinuousClock.Instant, finish: FinishLine,
                               latencies: Latencies) async throws {
        while !finish.isReached {
            for job in try await client.call(Reserve.self, Reserve.Params(queues: [queue], max: 1, waitMs: 500)).jobs {
                _ = try await client.call(Ack.self, Ack.Params(id: job.id))
                if let sent = job.args.arrayValue?.first?.intValue { latencies.record(.now - (origin + .nanoseconds(sent))) }
                finish.add()
            }
        }
    }

    /// Fills a queue with `backlog` waiting jobs (not timed), then runs the end-to-end scenario on another queue
    /// beside it; compare with the empty-queue run.
    static func endToEndBesideBacklog(_ settings: BenchSettings, backlog: Int, total: Int) async throws -> BenchResult {
        let filler = try settings.clients(4, "filler")
        let progress = Progress()
        let backlogQueue = settings.queue("backlog")
        try await withProgressLine("filling the backlog", total: backlog, progress: progress) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                let batches = (backlog + 999) / 1000
                for (index, client) in filler.enumerated() {
                    group.addTask {
                        for _ in 0..<share(of: batches, part: index, of: filler.count) {
                            _ = try await client.call(EnqueueBatch.self, EnqueueBatch.Params(jobs: Array(repeating: noop(backlogQueue), count: 1000)))
                            progress.add(1000)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        await closeAll(filler)
        return try await endToEnd(
            settings, queue: settings.queue("beside-backlog"), total: total, label: "end to end beside \(backlog) queued jobs",
            target: "within 20% of the empty-queue rate", required: 0)
    }
}
