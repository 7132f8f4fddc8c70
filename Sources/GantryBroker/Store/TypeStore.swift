import Foundation
import GantryProtocol
import Logging
import PostgresNIO

/// Job types (`gantry.job_types`) and their saved presets (`gantry.type_presets`). An operator's registration
/// wins over a worker's announcement: `hello` fills in types nobody registered and refreshes only schemas that
/// workers announced.
public struct TypeStore: Sendable {
    let storage: Storage
    let logger: Logger

    public init(storage: Storage, logger: Logger) {
        self.storage = storage
        self.logger = logger
    }

    private static let columns = "type, queue, description, args_schema, runnable, source, announced_at, created_at, updated_at"
    private typealias Row = (String, String?, String?, JSONValue?, Bool, String, Date?, Date, Date)

    private static func jobType(_ row: Row) -> JobType {
        JobType(type: row.0, queue: row.1, description: row.2, argsSchema: row.3, runnable: row.4, source: row.5,
                announcedAt: row.6, createdAt: row.7, updatedAt: row.8)
    }

    private func types(_ rows: PostgresRowSequence) async throws -> [JobType] {
        var types: [JobType] = []
        for try await row in rows.decode(Row.self) { types.append(Self.jobType(row)) }
        return types
    }

    public func list() async throws -> [JobType] {
        let logger = logger
        return try await storage.withConnection { connection in
            try await types(connection.query("SELECT \(unescaped: Self.columns) FROM gantry.job_types ORDER BY type", logger: logger))
        }
    }

    public func get(_ type: String) async throws -> JobType? {
        let logger = logger
        return try await storage.withConnection { connection in
            try await types(connection.query(
                "SELECT \(unescaped: Self.columns) FROM gantry.job_types WHERE type = \(type)", logger: logger)).first
        }
    }

    public func register(_ params: TypesRegister.Params, source: String = "rpc") async throws -> (JobType, created: Bool) {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                INSERT INTO gantry.job_types AS t (type, queue, description, args_schema, runnable, source)
                VALUES (\(params.type), \(params.queue), \(params.description), \(params.argsSchema)::json, \(params.runnable), \(source))
                ON CONFLICT (type) DO UPDATE
                SET queue = excluded.queue, description = excluded.description, args_schema = excluded.args_schema,
                    runnable = excluded.runnable, source = excluded.source, updated_at = now()
                RETURNING \(unescaped: Self.columns), (xmax = 0) AS created
                """, logger: logger)
            for try await row in rows.decode((String, String?, String?, JSONValue?, Bool, String, Date?, Date, Date, Bool).self) {
                return (Self.jobType((row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8)), row.9)
            }
            throw JobStore.InsertedRowMissing()
        }
    }

    /// A worker's `hello` handlers: new types are created from them, types workers announced take their
    /// schemas (an announcement without one leaves the schema as it is: an older worker in a rolling deploy does
    /// not switch the check off), types an operator registered only note that a worker is there. Returns the schemas now in force
    /// for the announced types.
    public func announce(_ handlers: [Hello.Handler]) async throws -> [String: JSONValue?] {
        let logger = logger
        var seen: Set<String> = []
        let unique = handlers.filter { seen.insert($0.type).inserted }
        let announced = JSONValue.array(unique.map { .object(["type": .string($0.type), "args_schema": $0.argsSchema ?? .null]) })
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                INSERT INTO gantry.job_types AS t (type, args_schema, source, announced_at)
                SELECT a.type, a.args_schema, 'worker', now() FROM json_to_recordset(\(announced)::json) AS a(type text, args_schema json)
                ON CONFLICT (type) DO UPDATE
                SET announced_at = now(),
                    args_schema = CASE WHEN t.source = 'worker' THEN coalesce(excluded.args_schema, t.args_schema) ELSE t.args_schema END,
                    updated_at = CASE WHEN t.source = 'worker' AND excluded.args_schema IS NOT NULL
                                           AND t.args_schema::text IS DISTINCT FROM excluded.args_schema::text
                                      THEN now() ELSE t.updated_at END
                RETURNING type, args_schema
                """, logger: logger)
            var inForce: [String: JSONValue?] = [:]
            for try await (type, schema) in rows.decode((String, JSONValue?).self) { inForce[type] = schema }
            return inForce
        }
    }

    public func delete(_ type: String) async throws -> Bool {
        let logger = logger
        return try await storage.withConnection { connection in
            try await connection.query("DELETE FROM gantry.type_presets WHERE type = \(type)", logger: logger)
            let rows = try await connection.query("DELETE FROM gantry.job_types WHERE type = \(type) RETURNING type", logger: logger)
            for try await _ in rows.decode(String.self) { return true }
            return false
        }
    }

    /// Every schema, to refresh each broker's copy.
    public func schemas() async throws -> [String: JSONValue] {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query(
                "SELECT type, args_schema FROM gantry.job_types WHERE args_schema IS NOT NULL", logger: logger)
            var schemas: [String: JSONValue] = [:]
            for try await (type, schema) in rows.decode((String, JSONValue).self) { schemas[type] = schema }
            return schemas
        }
    }

    // MARK: presets

    public struct Preset: Sendable, Hashable {
        public var name: String
        public var args: JSONValue
        public var createdBy: String
        public var createdAt: Date
    }

    public func presets(of type: String) async throws -> [Preset] {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query("""
                SELECT name, args, created_by, created_at FROM gantry.type_presets WHERE type = \(type) ORDER BY name
                """, logger: logger)
            var presets: [Preset] = []
            for try await (name, args, by, at) in rows.decode((String, JSONValue, String, Date).self) {
                presets.append(Preset(name: name, args: args, createdBy: by, createdAt: at))
            }
            return presets
        }
    }

    public func savePreset(type: String, name: String, args: JSONValue, by actor: String) async throws {
        let logger = logger
        try await storage.withConnection { connection in
            try await connection.query("""
                INSERT INTO gantry.type_presets (type, name, args, created_by) VALUES (\(type), \(name), \(args)::json, \(actor))
                ON CONFLICT (type, name) DO UPDATE SET args = excluded.args, created_by = excluded.created_by, created_at = now()
                """, logger: logger)
        }
    }

    public func deletePreset(type: String, name: String) async throws -> Bool {
        let logger = logger
        return try await storage.withConnection { connection in
            let rows = try await connection.query(
                "DELETE FROM gantry.type_presets WHERE type = \(type) AND name = \(name) RETURNING name", logger: logger)
            for try await _ in rows.decode(String.self) { return true }
            return false
        }
    }
}
