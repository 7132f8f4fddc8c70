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
    var params: JSONObject = ["queues": .array(queues.map(JSONValue.string)), "max": .int(Int64(max)), "wait_ms": .int(Int64(waitMs))]
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

/// A job's state as stored, or nil when the broker says there is no such job. A refusal for another reason (the
/// database still coming back, a loaded machine) is asked again rather than taken for a lost job.
func storedState(of id: String, on client: LineClient) async throws -> JSONValue? {
    var response = try await client.call("jobs.get", ["id": .string(id)], timeout: .seconds(30))
    for _ in 0..<60 where response.error != nil && response.errorCode != -32002 {
        try await Task.sleep(for: .milliseconds(500))
        response = try await client.call("jobs.get", ["id": .string(id)], timeout: .seconds(30))
    }
    if let error = response.error, error.code != -32002 { throw error }
    return response.result?["state"]
}
