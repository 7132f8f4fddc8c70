import Foundation
import GantryClient
import GantryProtocol
import Synchronization

extension Scenarios {
    /// End to end at a steady `rate` for `minutes`: producers pace their enqueues, workers reserve one and ack it.
    /// Reports the rate of every minute, so a broker (or a table) that slows down over time shows as a slope.
    static func soak(_ settings: BenchSettings, queue: String, rate: Int, minutes: Int, connections: Int = 16) async throws -> BenchResult {
        let producers = try settings.clients(connections, "soak-producer")
        let workers = try settings.clients(connections, "soak-worker")
        let total = rate * minutes * 60
        let finish = FinishLine(total: total)
        let latencies = Latencies()
        let origin = ContinuousClock.now
        let perMinute = Minutes()
        try await withProgressLine("soak at \(rate)/s for \(minutes) min", total: total, progress: finish.progress) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, client) in producers.enumerated() {
                    group.addTask {
                        let count = share(of: total, part: index, of: producers.count)
                        // Each producer keeps its own schedule, offset from the others so the load is even.
                        let gap = Duration.seconds(Double(producers.count) / Double(rate))
                        let start = origin + gap * (Double(index) / Double(producers.count))
                        for sent in 0..<count {
                            try await Task.sleep(until: start + gap * sent, clock: .continuous)
                            try await enqueueStamped(client, queue: queue, origin: origin)
                        }
                    }
                }
                for client in workers {
                    group.addTask { try await workOneAtATime(client, queue: queue, origin: origin, finish: finish, latencies: latencies) }
                }
                var counted = 0
                for minute in 1...minutes {
                    try await Task.sleep(until: origin + .seconds(60 * minute), clock: .continuous)
                    let done = finish.progress.value
                    perMinute.add(done - counted)
                    counted = done
                }
                try await group.waitForAll()
            }
        }
        let took = ((finish.at ?? .now) - origin).seconds
        await closeAll(producers + workers)
        let rates = perMinute.all.map { Double($0) / 60 }
        let slowest = rates.min() ?? 0
        return BenchResult(
            scenario: "soak: end to end at \(rate) jobs/s for \(minutes) min, \(connections) producers and workers", jobs: total,
            seconds: took, jobsPerSecond: Double(total) / took, p50Ms: latencies.milliseconds(at: 50),
            p99Ms: latencies.milliseconds(at: 99), target: "flat throughput", met: slowest >= Double(rate) * 0.95,
            note: "jobs/s per minute: " + rates.map { String(format: "%.0f", $0) }.joined(separator: ", "))
    }
}

/// Jobs finished in each minute so far.
final class Minutes: Sendable {
    private let counts = Mutex<[Int]>([])
    func add(_ count: Int) { counts.withLock { $0.append(count) } }
    var all: [Int] { counts.withLock { $0 } }
}
