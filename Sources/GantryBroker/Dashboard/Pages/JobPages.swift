import Foundation
import GantryProtocol
import Hummingbird

extension DashboardPages {
    static let pageSize = 50
    /// "All N matching" counts this far, and says "10,000+" beyond: never a count over the whole table.
    static let countLimit = 10_000

    /// The jobs page's filters from its query string; a problem when one cannot be read.
    static func jobFilter(_ query: FormFields) -> (JobStore.JobFilter, problem: String?) {
        var filter = JobStore.JobFilter(queue: query["queue"], type: query["type"], tag: query["tag"])
        var problems: [String] = []
        if let state = query["state"] {
            if let known = JobState(rawValue: state) { filter.state = known } else { problems.append("state \(state) is not a job state") }
        }
        if let args = query["args"] {
            do {
                let value = try JSONReader.read(Data(args.utf8))
                if case .object = value { filter.args = value } else if case .array = value { filter.args = value } else {
                    problems.append("args must be a JSON object or array to look for inside args, like {\"user_id\": 7}")
                }
            } catch {
                problems.append("args is not valid JSON (\(error)); write it like {\"user_id\": 7}")
            }
        }
        filter.enqueuedAfter = query["from"].flatMap(Self.parseLocalTime)
        filter.enqueuedBefore = query["to"].flatMap(Self.parseLocalTime)
        if let before = query["before"] { filter.beforeID = Int64(before) }
        return (filter, problems.isEmpty ? nil : problems.joined(separator: "; "))
    }

    /// `datetime-local` values, read as UTC (the dashboard shows every time in UTC).
    static func parseLocalTime(_ text: String) -> Date? {
        for suffix in [":00Z", "Z", ":00.000Z"] {
            if let date = GantryJSON.parseTimestamp(text + suffix) { return date }
        }
        return GantryJSON.parseTimestamp(text)
    }

    static func localTime(_ date: Date?) -> String {
        guard let date else { return "" }
        return String(GantryJSON.formatTimestamp(date).prefix(16))
    }

    func jobs(user: DashboardUser, query: FormFields) async throws -> Response {
        var (filter, problem) = Self.jobFilter(query)
        if filter.args != nil && !seesArgs(user) {
            problem = "Searching by args needs a token that may see args (an admin's, or a viewer's with --dashboard-viewers-see-args)."
        }
        let jobs = problem == nil ? try await broker.jobStore.listJobs(filter, limit: Self.pageSize) : []
        var everyPage = filter
        everyPage.beforeID = nil
        let matching = problem == nil && user.mayAct ? try await broker.jobStore.countJobs(everyPage, atMost: Self.countLimit) : 0
        let showArgs = seesArgs(user)
        let now = Date()
        let rows: [[String: Any]] = jobs.map { job in
            [
                "id": job.id, "type": job.type, "queue": job.queue, "state": job.state.rawValue, "attempt": job.attempt,
                "maxAttempts": job.maxAttempts, "args": showArgs ? DashboardView.compact(job.args) : "hidden",
                "enqueuedAt": DashboardView.timestamp(job.enqueuedAt), "enqueuedAgo": DashboardView.ago(job.enqueuedAt, now: now),
                "when": job.finishedAt.map { "finished " + DashboardView.ago($0, now: now) } ?? DashboardView.ago(job.runAt, now: now),
            ]
        }
        let filterQuery = query.encoded(replacing: "before", with: nil)
        let model: [String: Any] = [
            "filter": [
                "queue": query["queue"] ?? "", "type": query["type"] ?? "", "tag": query["tag"] ?? "", "args": query["args"] ?? "",
                "from": query["from"] ?? "", "to": query["to"] ?? "",
            ],
            "states": JobState.allCases.map { ["name": $0.rawValue, "selected": $0 == filter.state] as [String: Any] },
            "jobs": rows,
            "problem": problem as Any,
            "filterQuery": filterQuery,
            "matching": matching > Self.countLimit ? "\(Self.countLimit.formatted())+" : matching.formatted(),
            "firstPage": filter.beforeID != nil ? filterQuery : "",
            "nextPage": jobs.count == Self.pageSize ? query.encoded(replacing: "before", with: jobs.last?.id) : "",
        ]
        return DashboardView.page("jobs", title: "Jobs", section: "/jobs", user: user, query: query, model: model)
    }

    func job(id: String, user: DashboardUser, query: FormFields) async throws -> Response {
        guard let number = Int64(id), let job = try await broker.jobStore.job(id: number) else {
            return DashboardView.page("jobs", title: "No such job", section: "/jobs", user: user, query: query, model: [
                "problem": "There is no job \(id): it may have been discarded or cleaned up.", "jobs": [] as [Any],
                "states": JobState.allCases.map { ["name": $0.rawValue] }, "filter": [:] as [String: Any],
            ], status: .notFound)
        }
        let showArgs = seesArgs(user)
        var attempts: [[String: Any]] = job.errors.map { error in
            [
                "attempt": error.attempt, "outcome": error.reason.replacingOccurrences(of: "_", with: " "), "outcomeClass": "failed",
                "worker": error.worker ?? "", "started": DashboardView.timestamp(error.startedAt),
                "duration": error.startedAt.map { DashboardView.duration(error.at.timeIntervalSince($0)) } ?? "",
                "message": error.message, "kind": error.kind ?? "",
                "backtrace": error.backtrace.map { value in value.stringValue ?? DashboardView.pretty(value) } ?? "",
            ]
        }
        if job.state == .completed || job.state == .reserved, job.attempt > (job.errors.last?.attempt ?? 0) {
            attempts.append([
                "attempt": job.attempt, "outcome": job.state == .completed ? "completed" : "running",
                "outcomeClass": job.state == .completed ? "completed" : "reserved", "worker": "",
                "started": DashboardView.timestamp(job.reservedAt),
                "duration": job.reservedAt.map { DashboardView.duration((job.finishedAt ?? Date()).timeIntervalSince($0)) } ?? "",
                "message": "", "kind": "", "backtrace": "",
            ])
        }
        let waiting = [JobState.scheduled, .available].contains(job.state)
        let model: [String: Any] = [
            "id": job.id, "state": job.state.rawValue, "type": job.type, "typePath": Self.pathSegment(job.type), "queue": job.queue,
            "priority": job.priority, "attempt": job.attempt, "maxAttempts": job.maxAttempts,
            "enqueuedAt": DashboardView.timestamp(job.enqueuedAt), "runAt": DashboardView.timestamp(job.runAt),
            "reservedAt": DashboardView.timestamp(job.reservedAt), "leaseExpiresAt": DashboardView.timestamp(job.leaseExpiresAt),
            "finishedAt": DashboardView.timestamp(job.finishedAt),
            "took": zip2(job.reservedAt, job.finishedAt).map { DashboardView.duration($1.timeIntervalSince($0)) } ?? "",
            "uniqueKey": job.uniqueKey ?? "", "tags": job.tags.joined(separator: ", "),
            "cancelRequestedAt": DashboardView.timestamp(job.cancelRequestedAt),
            "seesArgs": showArgs,
            "args": showArgs ? DashboardView.pretty(job.args) : "", "result": showArgs ? DashboardView.pretty(job.result) : "",
            "meta": showArgs ? DashboardView.pretty(job.meta) : "",
            "attempts": attempts,
            "canRetry": JobStore.retryableStates.contains(job.state),
            "canCancel": waiting || job.state == .reserved,
            "canDiscard": job.state != .reserved,
        ]
        return DashboardView.page("job", title: "Job \(job.id)", section: "/jobs", user: user, query: query, model: model)
    }

    enum JobAction: String, Sendable { case retry, cancel, discard }

    func jobAction(_ action: JobAction, id: String) async throws -> Dashboard.ActionOutcome {
        let params = JobsGet.Params(id: id)
        let back = "/jobs/\(id)"
        do {
            switch action {
            case .retry:
                _ = try await broker.operators.retry(params)
                return .done(back, "Job \(id) is available again.", target: "job \(id)")
            case .cancel:
                let result = try await broker.operators.cancel(params)
                return .done(back, result.state == .reserved ? "Job \(id)'s worker was told to stop it." : "Job \(id) is cancelled.", target: "job \(id)")
            case .discard:
                _ = try await broker.operators.discard(params)
                return .done("/jobs", "Job \(id) was discarded.", target: "job \(id)")
            }
        } catch let error as RPCErrorObject {
            return .failed(back, error.message, target: "job \(id)")
        }
    }

    func bulk(id: String, user: DashboardUser, query: FormFields) async throws -> Response {
        try await broker.dashboardStore.failAbandonedBulkActions()
        guard let number = Int64(id), let action = try await broker.dashboardStore.bulkAction(id: number) else {
            return DashboardView.plain("no bulk action \(id)", status: .notFound)
        }
        var filter = action.filter
        if !seesArgs(user), case .object(var members) = filter, members["args"] != nil {
            members["args"] = "hidden"
            filter = .object(members)
        }
        let model: [String: Any] = [
            "id": action.id, "action": action.action, "filter": DashboardView.compact(filter, limit: 400), "state": action.state,
            "matched": action.matched, "done": action.done, "skipped": action.skipped, "progressMax": max(action.matched, 1),
            "error": action.error ?? "", "actor": action.actor, "startedAt": DashboardView.timestamp(action.startedAt),
            "finishedAt": DashboardView.timestamp(action.finishedAt),
        ]
        return DashboardView.page("bulk", title: "Bulk action \(action.id)", section: "/jobs", user: user, query: query, model: model)
    }

    /// The selected jobs, one by one within the request (a page holds at most `pageSize`); or every job matching
    /// the filter, as a tracked background action.
    func bulkAction(form: FormFields, user: DashboardUser) async throws -> Dashboard.ActionOutcome {
        let filterQuery = form["filter"] ?? ""
        let back = "/jobs" + (filterQuery.isEmpty ? "" : "?" + filterQuery)
        guard let requested = form["action"] else { return .failed(back, "Choose an action: retry, cancel or discard, for the selected jobs or all matching.", target: "jobs") }
        let allMatching = requested.hasSuffix("-all")
        guard let action = JobAction(rawValue: allMatching ? String(requested.dropLast(4)) : requested) else {
            return .failed(back, "Unknown action \(requested); use retry, cancel or discard, with -all for every job matching the filter.", target: "jobs")
        }
        if allMatching {
            let (filter, problem) = Self.jobFilter(FormFields(Substring(filterQuery)))
            if let problem { return .failed(back, problem, target: "jobs") }
            let id = try await BulkActionRunner(broker: broker).start(action, filter: filter, description: FormFields(Substring(filterQuery)), actor: user.name)
            return .done("/bulk/\(id)", "Started: \(action.rawValue) every job matching the filter.", target: "jobs matching a filter (bulk action \(id))",
                         details: ["bulk_action": .int(id)])
        }
        let ids = form.all("ids")
        guard !ids.isEmpty else { return .failed(back, "Select some jobs first.", target: "jobs") }
        guard ids.count <= Self.pageSize else { return .failed(back, "At most \(Self.pageSize) jobs at once; use “all matching”.", target: "jobs") }
        var (done, refused) = (0, [String]())
        for id in ids {
            let outcome = try await jobAction(action, id: id)
            if outcome.problem == nil { done += 1 } else { refused.append(id) }
        }
        let details: JSONValue = ["ids": .array(ids.map(JSONValue.string)), "refused": .array(refused.map(JSONValue.string))]
        let notice = "\(action.rawValue.capitalized): \(done) of \(ids.count) jobs" + (refused.isEmpty ? "." : "; not possible for \(refused.joined(separator: ", ")) in their state.")
        return refused.count == ids.count
            ? .failed(back, notice, target: "jobs \(ids.joined(separator: ", "))", details: details)
            : .done(back, notice, target: "jobs \(ids.joined(separator: ", "))", details: details)
    }
}

private func zip2<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}
