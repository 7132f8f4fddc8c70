import ArgumentParser
import Foundation
import GantryClient
import GantryProtocol

@main
struct Gantry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gantry",
        abstract: "Operate a Gantry broker: queues, jobs, retries, workers, cleanup, cron schedules, queue limits, operations, events.",
        discussion: """
            Talks to the broker over its JSON-RPC port. Tables for people; --json for scripts.
            Exit codes: 0 done, 1 the broker refused (the message says why), 3 broker unreachable, 64 bad usage.
            """,
        subcommands: [StatsCommand.self, QueuesCommand.self, JobsCommand.self, JobCommand.self, RetryCommand.self, CancelCommand.self,
                      DiscardCommand.self, PauseCommand.self, ResumeCommand.self, EnqueueCommand.self, WorkersCommand.self,
                      CleanupCommand.self, CronCommand.self, LimitCommand.self, OperationsCommand.self, EventsCommand.self, PackagesCommand.self, TokenCommand.self, BenchCommand.self])
}

/// Options every command takes.
struct Connection: ParsableArguments {
    @Option(help: "The broker, as gantry://host:port or host:port (default: GANTRY_URL, else 127.0.0.1:7440).")
    var broker: String?

    @Option(help: "The token to send in hello (default: GANTRY_TOKEN, or one in the URL).")
    var token: String?

    @Option(help: "PEM file of the CA that signs the broker's certificate (default: GANTRY_CA_FILE, else the system's CAs); TLS is on with it or a gantrys:// URL.")
    var caFile: String?

    @Option(help: "PEM client certificate, for a broker that wants one (default: GANTRY_CERT_FILE).")
    var certFile: String?

    @Option(help: "PEM key of --cert-file (default: GANTRY_KEY_FILE).")
    var keyFile: String?

    @Flag(help: "Print the broker's JSON answer instead of a table.")
    var json = false

    func client() throws -> GantryClient {
        do {
            return try GantryClient(
                url: broker ?? ProcessInfo.processInfo.environment["GANTRY_URL"] ?? "127.0.0.1:7440", name: "gantry-cli",
                token: token ?? ProcessInfo.processInfo.environment["GANTRY_TOKEN"],
                tls: ClientTLS.fromEnvironment(caFile: caFile, certificateFile: certFile, keyFile: keyFile), patience: .zero)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// Runs one request, printing errors the way an operator needs them and exiting with a meaningful code.
    func perform<Value: Encodable>(_ body: (GantryClient) async throws -> Value, table: (Value) -> String) async throws {
        let client = try client()
        do {
            let value = try await body(client)
            if json {
                var encoder = GantryJSON.makeEncoder()
                encoder.prettyPrinted = true
                print(String(decoding: try encoder.encode(value), as: UTF8.self))
            } else {
                print(table(value), terminator: "")
            }
            await client.close()
        } catch let error as RPCErrorObject {
            FileHandle.standardError.write(Data("gantry: \(error.message)\n".utf8))
            throw ExitCode(1)
        } catch let error as ConnectionLost {
            FileHandle.standardError.write(Data("gantry: \(error.description)\n".utf8))
            throw ExitCode(3)
        } catch let error as TLSFailure {
            FileHandle.standardError.write(Data("gantry: \(error.description)\n".utf8))
            throw ExitCode(3)
        }
    }
}
