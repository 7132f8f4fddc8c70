import Foundation
import GantryProtocol
import CoreMetrics
import Logging
import Synchronization

/// Who is connected: `hello`, and the operators' `workers.list`, `workers.quiet` and `workers.stop`. Every
/// broker publishes its workers with its heartbeat and passes orders on through the control channel, so these
/// work from any broker.
struct WorkerHandlers {
    let broker: Broker

    func hello(_ params: Hello.Params, session: Session) async throws -> Hello.Result {
        try broker.authenticate(params, session: session)
        try await broker.types.announce(params.worker?.handlers ?? [], session: session)
        let change = session.update { $0.greeted(params) }
        if change.wasWorker != change.isWorker {
            broker.counts.withLock { $0.workers += change.isWorker ? 1 : -1 }
            if change.isWorker { broker.metrics.workers.increment() } else { broker.metrics.workers.decrement() }
        }
        broker.logger.info("hello", metadata: [
            "session": "\(session.id)", "peer": "\(session.peer)", "client": "\(params.client ?? "-")",
            "worker": "\(params.worker?.id ?? "-")", "token": "\(session.access?.name ?? "-")",
        ])
        return Hello.Result(
            broker: "gantryd \(broker.configuration.version)", protocol: ProtocolDefaults.protocolVersion, sessionID: session.id.wireString)
    }

    /// Workers connected here, as they are now.
    func local() -> [WorkerInfo] {
        let open = broker.sessions.withLock { Array($0.values) }
        return open.compactMap { $0.workerInfo(brokerID: broker.id.wireString) }
    }

    func list() async throws -> WorkersList.Result {
        var workers = local()
        workers += try await remote()
        workers.sort { ($0.connectedAt, $0.sessionID) < ($1.connectedAt, $1.sessionID) }
        return WorkersList.Result(workers: workers)
    }

    private func remote() async throws -> [WorkerInfo] {
        let timeoutMs = broker.configuration.brokerTimeout.milliseconds
        let decoder = GantryJSON.makeDecoder()
        return try await broker.brokerStore.workersOfOtherBrokers(than: broker.id, aliveWithinMs: timeoutMs).flatMap { list in
            (try? decoder.decode([WorkerInfo].self, from: Data(list.utf8))) ?? []
        }
    }

    /// Tells the chosen workers here at once and the other brokers' through the control channel; returns how
    /// many connected workers were chosen.
    func steer(_ params: WorkersQuiet.Params, _ order: WorkerNotification) async throws -> WorkersQuiet.Result {
        let told = await tellLocal(params, order)
        let remote = try await remote().filter { params.matches(workerID: $0.id, sessionID: $0.sessionID) }.count
        let control = ControlOrder(from: broker.id.wireString, order: order.rawValue, id: params.id, all: params.all)
        try await broker.brokerStore.sendControl(String(decoding: try GantryJSON.makeEncoder().encode(control), as: UTF8.self))
        broker.logger.info("workers told", metadata: [
            "order": "\(order.rawValue)", "target": "\(params.all ? "all" : params.id ?? "-")", "here": "\(told)", "elsewhere": "\(remote)",
        ])
        return WorkersQuiet.Result(workers: told + remote)
    }

    /// Sends the order to matching workers on this broker; a stopped worker still connected after the drain
    /// grace is disconnected, which puts its jobs back.
    @discardableResult
    private func tellLocal(_ params: WorkersQuiet.Params, _ order: WorkerNotification) async -> Int {
        let chosen = broker.sessions.withLock { $0.values.filter { session in
            session.workerID.map { params.matches(workerID: $0, sessionID: session.id.wireString) } ?? false
        } }
        var told = 0
        for session in chosen where await session.tell(order) {
            told += 1
            if order == .stop {
                let grace = broker.configuration.drainGrace
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
              control.from != broker.id.wireString else { return }
        if control.order == QueueHandlers.limitsChanged {
            do { try await broker.queues.refreshLimits() } catch {
                broker.logger.warning("could not read changed queue limits; the next safety poll will", metadata: ["error": "\(error)"])
            }
            return
        }
        guard let order = WorkerNotification(rawValue: control.order) else { return }
        await tellLocal(WorkersQuiet.Params(id: control.id, all: control.all), order)
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
