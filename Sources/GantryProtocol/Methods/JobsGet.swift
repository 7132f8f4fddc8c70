import Foundation

/// `jobs.get`: the whole job, live or finished.
/// `{"jsonrpc":"2.0","id":7,"method":"jobs.get","params":{"id":"42"}}`
public enum JobsGet: RPCMethod {
    public static let name = "jobs.get"

    public struct Params: Codable, Sendable, Hashable, KnownFields, ValidatedParams {
        public var id: String
        public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
        enum CodingKeys: String, CodingKey, CaseIterable { case id }
        public init(id: String) { self.id = id }
        public func validate() throws(RPCErrorObject) { try JobID.check(id, field: "id") }
    }

    public typealias Result = Job
}
