import CLibPQ
import Foundation
import GantryProtocol
import PostgresNIO

/// A statement's rows in PostgreSQL's binary format, read in place from libpq's result (no row objects built).
/// Owns the result; readable from any thread once handed over.
final class PipelineRows: @unchecked Sendable {
    private let result: OpaquePointer?
    let count: Int

    init(_ result: OpaquePointer?) {
        self.result = result
        count = result.map { Int(PQntuples($0)) } ?? 0
    }

    deinit { if let result { PQclear(result) } }

    func isNull(_ row: Int, _ column: Int) -> Bool {
        PQgetisnull(result, Int32(row), Int32(column)) == 1
    }

    private func bytes(_ row: Int, _ column: Int) -> UnsafeRawBufferPointer {
        let start = PQgetvalue(result, Int32(row), Int32(column))
        return UnsafeRawBufferPointer(start: start, count: Int(PQgetlength(result, Int32(row), Int32(column))))
    }

    private func integer<Value: FixedWidthInteger>(_ row: Int, _ column: Int, as: Value.Type) throws(PipelineError) -> Value {
        let bytes = bytes(row, column)
        guard bytes.count == MemoryLayout<Value>.size else { throw .unreadable(column: column, "not a \(Value.self)") }
        return Value(bigEndian: bytes.loadUnaligned(as: Value.self))
    }

    func int64(_ row: Int, _ column: Int) throws(PipelineError) -> Int64 { try integer(row, column, as: Int64.self) }
    func int32(_ row: Int, _ column: Int) throws(PipelineError) -> Int32 { try integer(row, column, as: Int32.self) }
    func int16(_ row: Int, _ column: Int) throws(PipelineError) -> Int16 { try integer(row, column, as: Int16.self) }

    func optionalInt64(_ row: Int, _ column: Int) throws(PipelineError) -> Int64? {
        isNull(row, column) ? nil : try int64(row, column)
    }

    func bool(_ row: Int, _ column: Int) throws(PipelineError) -> Bool {
        let bytes = bytes(row, column)
        guard bytes.count == 1 else { throw .unreadable(column: column, "not a boolean") }
        return bytes[0] != 0
    }

    func string(_ row: Int, _ column: Int) -> String {
        String(decoding: bytes(row, column), as: UTF8.self)
    }

    func optionalString(_ row: Int, _ column: Int) -> String? {
        isNull(row, column) ? nil : string(row, column)
    }

    /// A `timestamptz`: microseconds since 2000-01-01 UTC, made into a Date as PostgresNIO makes it.
    func date(_ row: Int, _ column: Int) throws(PipelineError) -> Date {
        let microseconds = try int64(row, column)
        return Date(timeInterval: Double(microseconds) / 1_000_000, since: Self.postgresEpoch)
    }

    func optionalDate(_ row: Int, _ column: Int) throws(PipelineError) -> Date? {
        isNull(row, column) ? nil : try date(row, column)
    }

    private static let postgresEpoch = Date(timeIntervalSince1970: 946_684_800)

    /// A `json` column (its binary form is its text) or a `jsonb` one (a version byte, then the text).
    func json(_ row: Int, _ column: Int, jsonb: Bool = false) throws -> JSONValue {
        var bytes = bytes(row, column)
        if jsonb {
            guard bytes.first == 1 else { throw PipelineError.unreadable(column: column, "not jsonb version 1") }
            bytes = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
        }
        return try JSONReader.read(bytes)
    }

    func optionalJSON(_ row: Int, _ column: Int) throws -> JSONValue? {
        // Not a ternary: JSONValue is ExpressibleByNilLiteral, so `nil` there would become JSON null, not absence.
        guard !isNull(row, column) else { return nil }
        return try json(row, column)
    }

    /// A one-dimensional `text[]` without NULLs (an empty array has no dimensions).
    func textArray(_ row: Int, _ column: Int) throws(PipelineError) -> [String] {
        let bytes = bytes(row, column)
        func int32(at offset: Int) throws(PipelineError) -> Int {
            guard offset + 4 <= bytes.count else { throw .unreadable(column: column, "a text[] ends early") }
            return Int(Int32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
        }
        let dimensions = try int32(at: 0)
        guard dimensions != 0 else { return [] }
        guard dimensions == 1 else { throw .unreadable(column: column, "a text[] of \(dimensions) dimensions") }
        let count = try int32(at: 12)
        var offset = 20
        var elements: [String] = []
        elements.reserveCapacity(count)
        for _ in 0..<count {
            let length = try int32(at: offset)
            offset += 4
            guard length >= 0, offset + length <= bytes.count else { throw .unreadable(column: column, "a text[] element") }
            elements.append(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length]), as: UTF8.self))
            offset += length
        }
        return elements
    }
}

/// What PostgreSQL said when it refused a statement.
struct PostgresRefusal: Sendable, CustomStringConvertible {
    var sqlState: String
    var message: String

    init(_ result: OpaquePointer?) {
        func field(_ code: UInt8) -> String? {
            PQresultErrorField(result, Int32(code)).map { String(cString: $0) }
        }
        sqlState = field(UInt8(ascii: "C")) ?? ""
        message = field(UInt8(ascii: "M")) ?? result.map { String(cString: PQresultErrorMessage($0)) } ?? "unknown error"
    }

    var description: String { "\(message) (SQLSTATE \(sqlState))" }
}

/// Why a pipelined statement has no answer.
enum PipelineError: Error, CustomStringConvertible {
    /// No connection could be made: nothing was sent, so the request can safely be retried.
    case unavailable(String)
    /// The connection broke with the statement sent: it may or may not have committed.
    case connectionLost(String)
    case statementFailed(PostgresRefusal)
    /// An earlier statement of the same Sync failed (never expected: each statement has a Sync of its own).
    case aborted
    /// The broker is shutting down.
    case closed
    case unreadable(column: Int, String)

    var description: String {
        switch self {
        case .unavailable(let reason): "no PostgreSQL connection: \(reason)"
        case .connectionLost(let reason): "the PostgreSQL connection was lost: \(reason)"
        case .statementFailed(let refusal): "\(refusal)"
        case .aborted: "the statement was skipped after an earlier one failed"
        case .closed: "the broker is shutting down"
        case .unreadable(let column, let reason): "column \(column) could not be read: \(reason)"
        }
    }

    /// PostgreSQL is away or refused for its own state (as `PSQLError.meansPostgresIsAway`), not for the rows.
    var meansPostgresIsAway: Bool {
        switch self {
        case .unavailable, .connectionLost: true
        case .statementFailed(let refusal): PSQLError.meansPostgresIsAway(sqlState: refusal.sqlState)
        case .aborted, .closed, .unreadable: false
        }
    }
}
