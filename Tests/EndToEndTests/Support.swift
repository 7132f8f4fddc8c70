import Foundation
import GantryProtocol
import GantryTesting
import Synchronization
import Testing

/// A fresh database and a `gantryd` process on it.
func startBroker(_ extraArguments: [String] = []) async throws -> (BrokerProcess, String) {
    let (url, _) = try await TestPostgres.freshDatabase()
    return (try await BrokerProcess(databaseURL: url, extraArguments: extraArguments), url)
}

extension RPCResponse {
    var errorCode: Int? { error?.code }
}

extension JSONValue {
    /// `value["jobs"][0]["id"]` style access for assertions.
    subscript(index: Int) -> JSONValue? {
        guard case .array(let values) = self, values.indices.contains(index) else { return nil }
        return values[index]
    }
}

/// Reserves what is there (optionally waiting) and returns the jobs.
func reserve(_ client: LineClient, _ queues: [String], max: Int = 1, waitMs: Int = 0, leaseMs: Int? = nil) async throws -> [JSONValue] {
    var params: [String: JSONValue] = ["queues": .array(queues.map(JSONValue.string)), "max": .int(Int64(max)), "wait_ms": .int(Int64(waitMs))]
    if let leaseMs { params["lease_ms"] = .int(Int64(leaseMs)) }
    let result = try await client.result("reserve", .object(params), timeout: .milliseconds(waitMs) + .seconds(10))
    return result["jobs"]?.arrayValue ?? []
}

func enqueue(_ client: LineClient, _ params: JSONValue) async throws -> String {
    try #require(try await client.result("enqueue", params)["id"]?.stringValue)
}

/// Values gathered by concurrent tasks.
final class Collected<Element: Sendable>: Sendable {
    private let values = Mutex<[Element]>([])
    func append(_ value: Element) { values.withLock { $0.append(value) } }
    var all: [Element] { values.withLock { $0 } }
}
