import Foundation
import GantryProtocol
import Logging
import Synchronization

/// `watch` and `unwatch`, and handing every lifecycle event this broker hears (from `gantry.emit`, through
/// NOTIFY, whichever broker's transaction raised it) to the connections here that watch it.
struct WatchHandlers {
    let broker: Broker

    func watch(_ params: Watch.Params, session: Session) throws -> Watch.Result {
        let events = try LifecycleEvent.parse(params.events, field: "events").map(\.rawValue)
        session.watch(WatchFilter(events: Set(events), queues: params.queues.map(Set.init)))
        broker.watchingSessions.withLock { $0[session.id] = session }
        return Watch.Result(watching: events, queues: params.queues)
    }

    func unwatch(session: Session) -> Watch.Result {
        session.watch(nil)
        broker.watchingSessions.withLock { _ = $0.removeValue(forKey: session.id) }
        return Watch.Result(watching: [], queues: nil)
    }

    /// `payload` is the event as `gantry.emit` built it: `{event, at, queue?, …}`.
    func deliver(_ payload: String) async {
        // Most brokers have no watcher: every failed attempt anywhere must not cost them a JSON parse.
        let sessions = broker.watchingSessions.withLock { Array($0.values) }
        guard !sessions.isEmpty, let event = try? JSONReader.read(Data(payload.utf8)), let kind = event["event"]?.stringValue else { return }
        let queue = event["queue"]?.stringValue
        let line = Data(#"{"jsonrpc":"2.0","method":"\#(Watch.notification)","params":"#.utf8) + Data(payload.utf8) + Data("}".utf8)
        for session in sessions { await session.hear(event: kind, queue: queue, line: line) }
    }
}
