import Foundation
import GantryProtocol
import Logging

/// Job types: `types.register`, `types.get`, `types.delete`, the types workers announce in `hello`, and the
/// schemas every enqueue is checked against.
struct TypeHandlers {
    let broker: Broker

    func register(_ params: TypesRegister.Params, source: String = "rpc") async throws -> TypesRegister.Result {
        let compiled = try params.argsSchema.map { schema throws(RPCErrorObject) in try JSONSchema.checked(schema, field: "args_schema") }
        let (type, created) = try await broker.typeStore.register(params, source: source)
        broker.knownTypeSchemas.set(params.type, compiled)
        broker.logger.info(created ? "job type registered" : "job type updated", metadata: [
            "type": "\(params.type)", "schema": "\(params.argsSchema != nil)", "runnable": "\(params.runnable)",
        ])
        return TypesRegister.Result(type: type, created: created)
    }

    func get(_ params: TypeNameParams) async throws -> JobType {
        guard let type = try await broker.typeStore.get(params.type) else { throw RPCErrorObject.noSuchType(params.type) }
        return type
    }

    func delete(_ params: TypeNameParams) async throws -> TypesDelete.Result {
        guard try await broker.typeStore.delete(params.type) else { throw RPCErrorObject.noSuchType(params.type) }
        broker.knownTypeSchemas.set(params.type, nil)
        broker.logger.info("job type deleted", metadata: ["type": "\(params.type)"])
        return TypesDelete.Result(deleted: true)
    }

    /// The most handlers one hello may announce.
    static let maxAnnounced = 1000

    /// A worker's handlers, checked (a schema Gantry cannot check is refused in `hello`, where its author sees
    /// it at once) and recorded. Only workers and admins (or anyone, without tokens) shape types this way; a
    /// producer's or viewer's announcement is checked and otherwise ignored. Recording is best effort: a worker
    /// can still connect while PostgreSQL is away (it could not work anyway), and its next `hello` records them.
    func announce(_ handlers: [Hello.Handler], session: Session) async throws {
        guard !handlers.isEmpty else { return }
        guard handlers.count <= Self.maxAnnounced else {
            throw RPCErrorObject.invalidParams(field: "worker.handlers", "lists \(handlers.count) handlers; at most \(Self.maxAnnounced)")
        }
        var compiled: [String: JSONSchema] = [:]
        for (index, handler) in handlers.enumerated() {
            if let schema = handler.argsSchema { compiled[handler.type] = try JSONSchema.checked(schema, field: "worker.handlers[\(index)].args_schema") }
        }
        if broker.authenticator.isEnabled, let role = session.access?.role, role != .worker, role != .admin { return }
        // In one order for every worker, so two hellos upserting the same types never wait on each other in a cycle.
        let fresh = broker.knownTypeSchemas.announcementsToRecord(handlers).sorted { $0.type < $1.type }
        guard !fresh.isEmpty else { return }
        do {
            for (type, schema) in try await broker.typeStore.announce(fresh) {
                // Usually the schema just announced; a registered type keeps its own, compiled here.
                let inForce = schema.flatMap { schema in compiled[type].flatMap { $0.value == schema ? $0 : nil } ?? (try? JSONSchema(schema)) }
                broker.knownTypeSchemas.set(type, inForce)
            }
            broker.knownTypeSchemas.recorded(fresh)
        } catch {
            broker.logger.warning("could not record the job types a worker announced; its next hello will", metadata: [
                "types": "\(fresh.map(\.type).joined(separator: ","))", "error": "\(error)",
            ])
        }
    }

    /// Schemas unchanged since the last read keep their compiled form: a refresh costs a query, not a recompile.
    func refreshSchemas() async throws {
        let generation = broker.knownTypeSchemas.generation
        var compiled: [String: JSONSchema] = [:]
        for (type, schema) in try await broker.typeStore.schemas() {
            if let known = broker.knownTypeSchemas.schema(of: type), known.value == schema {
                compiled[type] = known
                continue
            }
            do { compiled[type] = try JSONSchema(schema) } catch {
                broker.logger.warning("a stored args_schema cannot be checked; its type's args are not checked", metadata: [
                    "type": "\(type)", "problem": "\(error)",
                ])
            }
        }
        broker.knownTypeSchemas.replace(with: compiled, readAtGeneration: generation)
    }
}
