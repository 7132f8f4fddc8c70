import Foundation
import GantryProtocol
import Logging

/// "Retry every job matching this filter": runs outside the web request, in batches walked by id (newest
/// first, so jobs the action changes are never met twice), writing its progress after each batch for the
/// dashboard to show.
struct BulkActionRunner: Sendable {
    let broker: Broker
    static let batchSize = 500

    func start(_ action: DashboardPages.JobAction, filter: JobStore.JobFilter, description: FormFields, actor: String) async throws -> Int64 {
        var recorded: JSONObject = [:]
        for (name, value) in description.pairs where !value.isEmpty && name != "before" { recorded[name] = .string(value) }
        let id = try await broker.dashboardStore.startBulkAction(
            action: action.rawValue, filter: .object(recorded), actor: actor, brokerID: broker.id)
        let runner = self
        Task { await runner.run(id: id, action, filter: filter) }
        return id
    }

    private func run(id: Int64, _ action: DashboardPages.JobAction, filter: JobStore.JobFilter) async {
        var filter = filter
        var (matched, done, skipped): (Int64, Int64, Int64) = (0, 0, 0)
        do {
            while true {
                let jobs = try await broker.jobStore.listJobs(filter, limit: Self.batchSize)
                var available: [String: Int] = [:]
                for job in jobs {
                    guard let number = Int64(job.id) else { continue }
                    let applied: Bool
                    switch action {
                    case .retry:
                        let queue = try await broker.jobStore.retryJob(id: number)
                        if let queue { available[queue, default: 0] += 1 }
                        applied = queue != nil
                    case .cancel: applied = try await broker.jobStore.cancelJob(id: number) != nil
                    case .discard: applied = try await broker.jobStore.discardJob(id: number)
                    }
                    if applied { done += 1 } else { skipped += 1 }
                }
                matched += Int64(jobs.count)
                if !available.isEmpty { await broker.announceAvailable(available) }
                let finished = jobs.count < Self.batchSize
                try await broker.dashboardStore.progress(bulkAction: id, matched: matched, done: done, skipped: skipped, finished: finished)
                if finished { break }
                filter.beforeID = jobs.last.flatMap { Int64($0.id) }
            }
            broker.logger.info("bulk action finished", metadata: [
                "bulk_action": "\(id)", "action": "\(action.rawValue)", "done": "\(done)", "skipped": "\(skipped)",
            ])
        } catch {
            broker.logger.error("bulk action failed", metadata: ["bulk_action": "\(id)", "error": "\(error)"])
            try? await broker.dashboardStore.progress(
                bulkAction: id, matched: matched, done: done, skipped: skipped, finished: true, error: "\(error)")
        }
    }
}
