import Crypto
import Foundation
import GantryProtocol

/// What a token may do. Producers put work in and look at it, workers take it and report back, viewers look at
/// everything and change nothing (the dashboard's read-only role), admins do everything (operators' methods and
/// cron included).
public enum Role: String, Sendable, CaseIterable, Codable {
    case producer
    case worker
    case viewer
    case admin

    public func mayCall(_ method: String) -> Bool {
        // The method table says which roles may call each method.
        self == .admin || method == Hello.name || MethodTable.rows[method]?.roles.contains(self) == true
    }
}

/// A configured token: only its SHA-256 is kept, so neither a config file nor the broker's memory holds it.
public struct AccessToken: Sendable, Equatable {
    /// Names the token in logs and errors (never the token itself).
    public var name: String
    public var digest: [UInt8]
    public var role: Role
    /// The queues it may use; nil for any. Admin tokens are never limited.
    public var queues: Set<String>?

    public init(name: String, digest: [UInt8], role: Role, queues: Set<String>? = nil) {
        self.name = name
        self.digest = digest
        self.role = role
        self.queues = queues
    }

    /// A token given in plain (from the environment), hashed at once.
    public init(name: String, plain: String, role: Role, queues: Set<String>? = nil) {
        self.init(name: name, digest: Self.digest(of: plain), role: role, queues: queues)
    }

    public static func digest(of token: String) -> [UInt8] { Array(SHA256.hash(data: Data(token.utf8))) }

    /// `sha256` as 64 hex digits, as `gantry token new` prints it.
    public static func parseDigest(_ hex: String) -> [UInt8]? {
        let digits = Array(hex.lowercased().utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: 64, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    public static func hex(_ digest: [UInt8]) -> String { digest.map { String(format: "%02x", $0) }.joined() }

    public func mayUse(queue: String) -> Bool { queues?.contains(queue) ?? true }
}

/// Finds the token a client presents among the configured ones.
public struct Authenticator: Sendable {
    public let tokens: [AccessToken]

    public init(tokens: [AccessToken]) { self.tokens = tokens }

    /// Whether connections must authenticate at all.
    public var isEnabled: Bool { !tokens.isEmpty }

    /// The presented token is hashed, then compared with every configured digest in full, without stopping
    /// at a match or a differing byte: how long it takes says nothing about which token, or how much of one,
    /// was right.
    public func authenticate(_ presented: String) -> AccessToken? {
        let digest = AccessToken.digest(of: presented)
        var found: AccessToken?
        for token in tokens where ConstantTime.equal(token.digest, digest) && found == nil { found = token }
        return found
    }
}

/// Comparing secrets (token digests, CSRF tokens) so that how long it takes says nothing about how much matched.
enum ConstantTime {
    /// Every byte is looked at whatever the first difference; only the lengths, which are no secret, end it early.
    static func equal(_ left: some Collection<UInt8>, _ right: some Collection<UInt8>) -> Bool {
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(left, right) { difference |= a ^ b }
        return difference == 0
    }
}
