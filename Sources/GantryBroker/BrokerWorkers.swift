import Foundation
import GantryProtocol
import Logging
import Synchronization

/// Operators see and steer workers: every broker publishes its workers with its heartbeat and passes orders
/// on through the control channel, so `workers.list` and `workers.quiet` work from any broker.
extension Broker {
    /// Workers connected here, as they are now.
    func localWorkers() -> [WorkerInfo] {
        let open = sessions.withLock { Array($0.values) }
        return open.compactMap { $0.workerInfo(brokerID: id.wireString) }
    }

    func listWorkers() async throws -> WorkersList.Result {
        var workers = localWorkers()
        workers += try await remoteWorkers()
        workers.sort { ($0.connectedAt, $0.sessionID) < ($1.connectedAt, $1.sessionID) }
        return WorkersList.Result(workers: workers)
    }

    private func remoteWorkers() async throws -> [WorkerInfo] {
        let timeoutMs = configuration.brokerTimeout.milliseconds
        let decoder = GantryJSON.makeDecoder()
        return try await brokers.workersOfOtherBrokers(than: id, aliveWithinMs: timeoutMs).flatMap { list in
            (try? decoder.decode([WorkerInfo].self, from: Data(list.utf8))) ?? []
        }
    }

    /// Tells the chosen workers here at once and the other brokers' through the control channel; returns how
    /// many connected workers were chosen.
    func steerWorkers(_ params: WorkersQuiet.Params, _ order: WorkerNotification) async throws -> WorkersQuiet.Result {
        let told = await tellLocalWorkers(params, order)
        let remote = try await remoteWorkers().filter { params.matches(workerID: $0.id, sessionID: $0.sessionID) }.count
        let control = ControlOrder(from: id.wireString, order: order.rawValue, id: params.id, all: params.all)
        try await brokers.sendControl(String(decoding: try GantryJSON.makeEncoder().encode(control), as: UTF8.self))
        logger.info("workers told", metadata: ["order": "\(order.rawValue)", "target": "\(params.all ? "all" : params.id ?? "-")", "here": "\(told)", "elsewhere": "\(remote)"])
        return WorkersQuiet.Result(workers: told + remote)
    }

    /// Sends the order to matching workers on this broker; a stopped worker still connected after the drain
    /// grace is disconnected, which puts its jobs back.
    @discardableResult
    func tellLocalWorkers(_ params: WorkersQuiet.Params, _ order: WorkerNotification) async -> Int {
        let chosen = sessions.withLock { $0.values.filter { session in
            session.workerID.map { params.matches(workerID: $0, sessionID: session.id.wireString) } ?? false
        } }
        var told = 0
        for session in chosen where await session.tell(order) {
            told += 1
            if order == .stop {
                let grace = configuration.drainGrace
                Task {
                    try? await Task.sleep(for: grace)
                    session.disconnect()
                }
            }
        }
        return told
    }

    /// An order from another broker's operator, received on the control channel.
    func receiveControl(_ payload: String) async {
        guard let control = try? GantryJSON.makeDecoder().decode(ControlOrder.self, from: Data(payload.utf8)),
              control.from != id.wireString else { return }
        if control.order == Self.queueLimitsChanged {
            do { try await refreshQueueLimits() } catch {
                logger.warning("could not read changed queue limits; the next safety poll will", metadata: ["error": "\(error)"])
            }
            return
        }
        guard let order = WorkerNotification(rawValue: control.order) else { return }
        await tellLocalWorkers(WorkersQuiet.Params(id: control.id, all: control.all), order)
    }
}

/// An order passed between brokers: which workers, and what to tell them (or that queue limits changed).
struct ControlOrder: Codable {
    var from: String
    var order: String
    var id: String?
    var all: Bool
}

extension Duration {
    var milliseconds: Int64 { nanoseconds / 1_000_000 }
}
