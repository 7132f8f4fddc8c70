import GantryProtocol
import PostgresNIO

// JSON values go to and from jsonb columns through their Codable form.
extension JSONValue: PostgresEncodable, PostgresDecodable {}
