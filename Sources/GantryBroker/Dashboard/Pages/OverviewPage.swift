import Foundation
import GantryProtocol
import Hummingbird

extension DashboardPages {
    func overview(user: DashboardUser, query: FormFields) async throws -> Response {
        async let queueStats = broker.queues.stats()
        async let activity = broker.dashboardStore.activity(minutes: 60)
        async let brokers = broker.dashboardStore.liveBrokers()
        async let workers = broker.workers.list()
        let stats = try await queueStats
        var totals: [String: Int64] = [:]
        for entry in stats.values {
            for key in ["available", "scheduled", "reserved", "dead"] { totals[key, default: 0] += entry.counts[key] ?? 0 }
            totals["processedLastHour", default: 0] += entry.processedLastHour
            totals["failedLastHour", default: 0] += entry.failedLastHour
        }
        let model: [String: Any] = [
            "totals": totals,
            "queues": Self.queueRows(stats),
            "chart": Self.chart(try await activity),
            "brokers": try await brokers.map { row -> [String: Any] in
                ["id": row.id.wireString, "host": row.host, "version": row.version, "started": DashboardView.ago(row.startedAt),
                 "heartbeat": DashboardView.ago(row.heartbeatAt), "this": row.id == broker.id]
            },
            "workerCount": try await workers.workers.count,
        ]
        return DashboardView.page("overview", title: "Overview", section: "/", user: user, query: query, model: model)
    }

    static func queueRows(_ stats: [String: Stats.QueueStats]) -> [[String: Any]] {
        stats.keys.sorted().map { name in
            let entry = stats[name]!
            return [
                "name": name, "available": entry.counts["available"] ?? 0, "scheduled": entry.counts["scheduled"] ?? 0,
                "reserved": entry.counts["reserved"] ?? 0, "dead": entry.counts["dead"] ?? 0,
                "latency": entry.latencyMs > 0 ? DashboardView.duration(Double(entry.latencyMs) / 1000) : "–",
                "processedLastHour": entry.processedLastHour, "failedLastHour": entry.failedLastHour, "paused": entry.paused,
                "concurrency": entry.concurrency.map(String.init) ?? "–",
                "rateLimit": entry.rateLimit.map { "\($0.limit) per \(DashboardView.duration(Double($0.periodMs) / 1000))" } ?? "–",
            ]
        }
    }

    /// Two lines over the last hour as an inline SVG: no chart library, nothing fetched.
    static func chart(_ points: [(minute: Date, processed: Int64, failed: Int64)]) -> String {
        let (width, height, pad) = (720.0, 160.0, 24.0)
        let top = max(1, points.map { max($0.processed, $0.failed) }.max() ?? 1)
        let step = points.count > 1 ? (width - 2 * pad) / Double(points.count - 1) : 0
        func line(_ value: KeyPath<(minute: Date, processed: Int64, failed: Int64), Int64>) -> String {
            points.enumerated().map { index, point in
                let x = pad + Double(index) * step
                let y = height - pad - Double(point[keyPath: value]) / Double(top) * (height - 2 * pad)
                return String(format: "%.1f,%.1f", x, y)
            }.joined(separator: " ")
        }
        return """
            <svg id="activity-chart" viewBox="0 0 \(Int(width)) \(Int(height))" width="100%" height="\(Int(height))" role="img" aria-label="processed and failed per minute">
            <line x1="\(pad)" y1="\(height - pad)" x2="\(width - pad)" y2="\(height - pad)" stroke="#e4e7ec"/>
            <text x="2" y="\(pad - 8)" font-size="11" fill="#667085">\(top)/min</text>
            <text x="\(pad)" y="\(height - 6)" font-size="11" fill="#667085">60 min ago</text>
            <text x="\(width - pad - 24)" y="\(height - 6)" font-size="11" fill="#667085">now</text>
            <polyline fill="none" stroke="#2457c5" stroke-width="2" points="\(line(\.processed))"/>
            <polyline fill="none" stroke="#b42318" stroke-width="2" points="\(line(\.failed))"/>
            </svg>
            """
    }
}
