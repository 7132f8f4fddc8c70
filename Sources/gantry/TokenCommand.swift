import ArgumentParser
import Crypto
import Foundation

/// `gantry token`: makes tokens for gantryd's `tokens:` list, which holds only their SHA-256.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Make a token for gantryd's config file (or hash one).",
        subcommands: [NewToken.self, HashToken.self], defaultSubcommand: NewToken.self)

    static func sha256(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

struct NewToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new", abstract: "Print a new random token and the entry for gantryd's tokens: list.")

    @Option(help: "The token's name, as logs and errors show it.")
    var name = "client"

    @Option(help: "producer (enqueue, jobs.get, stats), worker (reserve, ack, nack, extend, stats), viewer (the dashboard and stats, read only) or admin (everything).")
    var role = "producer"

    @Option(name: .customLong("queue"), help: "Limit the token to this queue (repeat for more; not for admin tokens).")
    var queues: [String] = []

    func validate() throws {
        guard ["producer", "worker", "viewer", "admin"].contains(role) else { throw ValidationError("--role must be producer, worker, viewer or admin.") }
        guard !(["admin", "viewer"].contains(role) && !queues.isEmpty) else {
            throw ValidationError("\(role.capitalized) tokens cover every queue; --queue is for producer and worker tokens.")
        }
    }

    func run() throws {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let token = "gt_" + Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        print("""
            token:  \(token)
                    give it to the client (GANTRY_TOKEN, or hello's token); it is not stored anywhere, so keep it now
            sha256: \(TokenCommand.sha256(token))

            For gantryd's config file:
            tokens:
              - name: \(name)
                role: \(role)
                sha256: \(TokenCommand.sha256(token))
            """ + (queues.isEmpty ? "" : "\n    queues: [\(queues.joined(separator: ", "))]"))
    }
}

struct HashToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash", abstract: "Print the SHA-256 of a token read from standard input (for a token you already have).")

    func run() throws {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else {
            throw ValidationError("Give the token on standard input, e.g. printf %s \"$TOKEN\" | gantry token hash")
        }
        print(TokenCommand.sha256(line))
    }
}
