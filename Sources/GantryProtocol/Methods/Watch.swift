import Foundation

/// The lifecycle events a connection can `watch` and a webhook can be sent.
public enum LifecycleEvent: String, Codable, Sendable, CaseIterable {
    /// An attempt failed and the job will be tried again (a nack, a lease that ran out, a closed connection).
    case jobFailed = "job.failed"
    /// A job failed for good.
    case jobDead = "job.dead"
    /// A finished job was brought back (`jobs.retry`, the dashboard's Retry).
    case jobRetried = "job.retried"
    /// An operation (or a package's execution) failed at a step.
    case operationFailed = "operation.failed"
    /// A worker's connection went away while it held jobs (they went back to their queues).
    case workerLost = "worker.lost"
    /// A queue's oldest available job has waited longer than its `backlog_alert_ms` (once, until it recovers).
    case queueBacklog = "queue.backlog"
    /// A cron schedule fired late, its ticks in between skipped (the brokers were down or paused meanwhile).
    case cronMissed = "cron.missed"

    /// Checks a list of event names (`field` names it in errors).
    public static func parse(_ names: [String], field: String) throws(RPCErrorObject) -> [LifecycleEvent] {
        guard !names.isEmpty else {
            throw .invalidParams(field: field, "must name at least one event: \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var events: [LifecycleEvent] = []
        for (index, name) in names.enumerated() {
            guard let event = LifecycleEvent(rawValue: name) else {
                throw .invalidParams(field: "\(field)[\(index)]", "\"\(name.prefix(60))\" is not an event; the events are \(allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if !events.contains(event) { events.append(event) }
        }
        return events
    }
}

/// `watch`: from now on the broker sends this connection a notification `{"jsonrpc":"2.0","method":"event",
/// "params":{event, at, queue?, job? | operation? | worker?}}` for every event named that happens on any broker
/// (in `queues`, when given), until `unwatch` or the connection ends. Calling it again replaces the filter.
/// `{"jsonrpc":"2.0","id":1,"method":"watch","params":{"events":["job.dead"],"queues":["billing"]}}`
public enum Watch: RPCMethod {
    public static let name = "watch"
    /// The notification's method.
    public static let notification = "event"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var events: [String]
        public var queues: [String]?

        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
        enum CodingKeys: String, CodingKey, CaseIterable { case events, queues }

        public init(events: [String], queues: [String]? = nil) {
            self.events = events
            self.queues = queues
        }

        public func validate() throws(RPCErrorObject) {
            _ = try LifecycleEvent.parse(events, field: "events")
            for (index, queue) in (queues ?? []).enumerated() { try Names.checkQueue(queue, field: "queues[\(index)]") }
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        /// What this connection hears now (empty after `unwatch`).
        public var watching: [String]
        public var queues: [String]?

        public init(watching: [String], queues: [String]?) {
            self.watching = watching
            self.queues = queues
        }
    }
}

/// `unwatch`: the connection hears no more events.
public enum Unwatch: RPCMethod {
    public static let name = "unwatch"
    public typealias Params = NoParams
    public typealias Result = Watch.Result
}
