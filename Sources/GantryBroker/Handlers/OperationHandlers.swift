import Foundation
import GantryProtocol
import Logging

/// Operations: `operations.start`, `.get`, `.list`, `.retry`, `.cancel`, and a step's ack with `set` or `jump_to`.
struct OperationHandlers {
    let broker: Broker

    func start(_ params: OperationsStart.Params) async throws -> OperationsStart.Result {
        let plan = try params.plan()
        let started = try await broker.operationStore.start(params, plan: plan)
        if started.created {
            broker.metrics.operationStarted(name: params.name)
            broker.logger.info("operation started", metadata: ["operation": "\(started.id)", "name": "\(params.name)"])
        }
        return started
    }

    func get(_ params: OperationIDParams) async throws -> OperationRecord {
        guard let id = Int64(params.id), let operation = try await broker.operationStore.get(id: id) else {
            throw RPCErrorObject.noSuchOperation(params.id)
        }
        return operation
    }

    func list(_ params: OperationsList.Params) async throws -> OperationsList.Result {
        try await broker.operationStore.list(params)
    }

    func retry(_ params: OperationsRetry.Params) async throws -> OperationsRetry.Result {
        guard let id = Int64(params.id) else { throw RPCErrorObject.noSuchOperation(params.id) }
        switch try await broker.operationStore.retry(id: id, from: params.from) {
        case .failure(.notFound): throw RPCErrorObject.noSuchOperation(params.id)
        case .failure(.wrongState(let state)):
            throw RPCErrorObject.operationWrongState(
                params.id, state: state, action: "operations.retry from \(params.from.rawValue)",
                allowed: params.from == .start ? "failed, cancelled or completed" : "failed or cancelled (from: \"start\" also takes completed)")
        case .success(let (jobIDs, state)):
            broker.logger.info("operation retried", metadata: ["operation": "\(id)", "from": "\(params.from.rawValue)", "jobs": "\(jobIDs.count)"])
            return OperationsRetry.Result(id: params.id, state: state, jobIDs: jobIDs.map { String($0) })
        }
    }

    func cancel(_ params: OperationIDParams) async throws -> OperationsCancel.Result {
        guard let id = Int64(params.id) else { throw RPCErrorObject.noSuchOperation(params.id) }
        switch try await broker.operationStore.cancel(id: id) {
        case .failure(.notFound): throw RPCErrorObject.noSuchOperation(params.id)
        case .failure(.wrongState(let state)):
            throw RPCErrorObject.operationWrongState(params.id, state: state, action: "operations.cancel", allowed: "running or failed")
        case .success(let (cancelled, stopping)):
            broker.logger.info("operation cancelled", metadata: ["operation": "\(id)", "cancelled": "\(cancelled)", "stopping": "\(stopping)"])
            return OperationsCancel.Result(id: params.id, state: .cancelled, cancelled: cancelled, stopping: stopping)
        }
    }
}
