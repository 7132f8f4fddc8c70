import Foundation
import Histogram
import Synchronization

/// Latencies in microseconds, recorded from many tasks at once.
final class Latencies: Sendable {
    private let histogram = Mutex(Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three))

    func record(_ duration: Duration) {
        let micros = UInt64(max(0, duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000))
        histogram.withLock { _ = $0.record(micros) }
    }

    var count: UInt64 { histogram.withLock { $0.totalCount } }

    /// Milliseconds at a percentile (0–100), nil when nothing was recorded.
    func milliseconds(at percentile: Double) -> Double? {
        histogram.withLock { $0.totalCount == 0 ? nil : Double($0.valueAtPercentile(percentile)) / 1000 }
    }
}

/// How far a scenario has got, for the live progress line.
final class Progress: Sendable {
    private let done = Atomic<Int>(0)
    func add(_ count: Int = 1) { done.add(count, ordering: .relaxed) }
    var value: Int { done.load(ordering: .relaxed) }
}

/// One scenario's outcome: a row of the table and an object of `--json`.
struct BenchResult: Encodable {
    var scenario: String
    var jobs: Int
    var seconds: Double
    var jobsPerSecond: Double?
    var p50Ms: Double?
    var p99Ms: Double?
    var target: String
    var met: Bool?
    var note: String?

    enum CodingKeys: String, CodingKey {
        case scenario, jobs, seconds, target, met, note
        case jobsPerSecond = "jobs_per_s"
        case p50Ms = "p50_ms"
        case p99Ms = "p99_ms"
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Prints `scenario: done/total (rate/s)` on one stderr line every half second while `body` runs.
func withProgressLine<T: Sendable>(_ label: String, total: Int, progress: Progress, _ body: @Sendable () async throws -> T) async throws -> T {
    let started = ContinuousClock.now
    let ticker = Task {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(500))
            let elapsed = (ContinuousClock.now - started).seconds
            let done = progress.value
            FileHandle.standardError.write(Data("\r\(label): \(done)/\(total) jobs, \(Int(Double(done) / max(elapsed, 0.001)))/s    ".utf8))
        }
    }
    defer {
        ticker.cancel()
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
    return try await body()
}
