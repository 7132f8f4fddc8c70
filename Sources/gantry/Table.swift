import Foundation
import GantryProtocol

/// Plain-text layouts for people.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    static func queues(_ queues: [String: Stats.QueueStats]) -> String {
        guard !queues.isEmpty else { return "no queues yet\n" }
        let states: [JobState] = [.available, .scheduled, .reserved, .completed, .dead]
        var rows = [["QUEUE"] + states.map { $0.rawValue.uppercased() } + ["LATENCY", "PROCESSED/FAILED: MINUTE", "HOUR", "ALL", "PAUSED", "LIMITS"]]
        for (name, stats) in queues.sorted(by: { $0.key < $1.key }) {
            rows.append([name] + states.map { String(stats.counts[$0.rawValue] ?? 0) }
                + [milliseconds(stats.latencyMs), "\(stats.processedLastMinute)/\(stats.failedLastMinute)",
                   "\(stats.processedLastHour)/\(stats.failedLastHour)", "\(stats.processed)/\(stats.failed)", stats.paused ? "yes" : "no",
                   limits(concurrency: stats.concurrency, rateLimit: stats.rateLimit) ?? "-"])
        }
        return render(rows)
    }

    /// "5 at once, 100 per 1.0 min", or nil when there are none.
    static func limits(concurrency: Int?, rateLimit: RateLimit?) -> String? {
        let parts = [concurrency.map { "\($0) at once" }, rateLimit.map { "\($0.limit) per \(milliseconds($0.periodMs))" }].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }

    static func job(_ job: Job) -> String {
        var lines = [
            "job \(job.id)  \(job.type)  \(job.state.rawValue)",
            "queue \(job.queue)  priority \(job.priority)  attempt \(job.attempt) of \(job.maxAttempts)",
            "args \(compact(job.args))",
            "enqueued \(GantryJSON.formatTimestamp(job.enqueuedAt))  run at \(GantryJSON.formatTimestamp(job.runAt))",
        ]
        if let asked = job.cancelRequestedAt { lines.append("cancel requested \(GantryJSON.formatTimestamp(asked))") }
        if let finished = job.finishedAt { lines.append("finished \(GantryJSON.formatTimestamp(finished))") }
        if let result = job.result { lines.append("result \(compact(result))") }
        for error in job.errors {
            lines.append("attempt \(error.attempt) failed \(GantryJSON.formatTimestamp(error.at)) (\(error.reason))"
                + (error.worker.map { " on \($0)" } ?? "") + ": " + (error.kind.map { "\($0): " } ?? "") + error.message)
            switch error.backtrace {
            case .string(let text)?: lines += text.split(separator: "\n").map { "    \($0)" }
            case .array(let frames)?: lines += frames.compactMap(\.stringValue).map { "    \($0)" }
            default: break
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// "3 s ago", "5 min ago": how long since a moment, for people.
    static func ago(_ moment: Date, now: Date = Date()) -> String {
        let seconds = max(0, Int(now.timeIntervalSince(moment)))
        return seconds < 120 ? "\(seconds) s ago" : seconds < 7200 ? "\(seconds / 60) min ago" : "\(seconds / 3600) h ago"
    }

    static func milliseconds(_ value: Int64) -> String {
        value < 1000 ? "\(value) ms" : String(format: "%.1f s", Double(value) / 1000)
    }

    static func compact(_ value: JSONValue) -> String {
        (try? String(decoding: GantryJSON.makeEncoder().encode(value), as: UTF8.self)) ?? "?"
    }
}
