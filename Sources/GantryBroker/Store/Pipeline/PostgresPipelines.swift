import Foundation
import Logging
import Synchronization

/// A statement the pipelines prepare on every connection they open.
struct PipelinedStatement: Sendable {
    var name: String
    var sql: String
}

/// The connections the hot statements (enqueue's insert, ack's completion, the claim, a job by id) run on:
/// libpq in pipeline mode, a thread per connection, opened as they are needed. Everything else runs on
/// PostgresNIO's pool (`Storage`), which LISTEN, transactions and the operators' queries need.
///
/// A connection runs its statements one after another (one backend, each statement its own commit), so a busy
/// broker opens more, up to `maxConnections`; each new statement goes to the least busy one.
public final class PostgresPipelines: Sendable {
    private let parameters: [(String, String)]
    private let maxConnections: Int
    private let logger: Logger
    private let connections = Mutex<[PipelineConnection]>([])

    /// - Parameter url: a libpq connection URI (`postgres://user@host:port/db?sslmode=…&host=/socket/dir`), as
    ///   gantryd's `--database-url` takes it; what it leaves out defaults as `DatabaseURL` does.
    public init(url: String, maxConnections: Int = 8, logger: Logger) {
        parameters = [
            ("host", "127.0.0.1"), ("user", "postgres"), ("dbname", url),
            // As `withGantrySessionSettings` for PostgresNIO's connections: each run planned for the table as it is.
            ("options", "-c plan_cache_mode=force_custom_plan"),
            ("application_name", "gantryd"), ("connect_timeout", "5"),
        ]
        self.maxConnections = maxConnections
        self.logger = logger
    }

    static let statements: [PipelinedStatement] = [
        InsertJobsStatement.pipelined, CompleteJobsStatement.pipelined, JobByIDStatement.pipelined, ClaimStatement.pipelined,
    ]

    /// Runs a prepared statement on the least busy connection; answers once PostgreSQL has committed it.
    func execute(_ statement: PipelinedStatement, _ parameters: [String?]) async throws -> PipelineRows {
        try await pick().execute(statement.name, parameters)
    }

    private func pick() -> PipelineConnection {
        connections.withLock { connections in
            let idlest = connections.min { $0.load.load(ordering: .relaxed) < $1.load.load(ordering: .relaxed) }
            if let idlest, idlest.load.load(ordering: .relaxed) == 0 || connections.count >= maxConnections { return idlest }
            let opened = PipelineConnection(
                parameters: parameters, statements: Self.statements.map { ($0.name, $0.sql) }, logger: logger)
            connections.append(opened)
            return opened
        }
    }

    /// Lets what is in flight finish and closes every connection.
    public func close() async {
        for connection in connections.withLock({ $0 }) { await connection.close() }
    }
}
