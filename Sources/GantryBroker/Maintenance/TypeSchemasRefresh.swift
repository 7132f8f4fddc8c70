/// Reads the job types' schemas again, so a type registered through another broker is enforced here within
/// `safetyPollInterval`.
struct TypeSchemasRefresh {
    let broker: Broker

    func round() async throws -> Duration {
        try await broker.types.refreshSchemas()
        return broker.configuration.safetyPollInterval
    }
}
