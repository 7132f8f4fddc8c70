import Foundation
@testable import GantryProtocol
import GantryTesting
import Testing

/// The Swift types hold to proto-json's README, so the spec and the code cannot drift apart: every request
/// line of its transcripts that the broker answers with a result decodes into (and passes the checks of) the
/// method's Swift params, every one it refuses with -32602 is refused by them naming the same field, and every
/// result decodes into the method's Swift result.
@Suite(.deadline(.seconds(60))) struct SpecExampleTests {
    /// How to read one method's params and result.
    struct Shapes {
        let params: @Sendable (JSONValue?) throws(RPCErrorObject) -> Void
        let result: @Sendable (JSONValue) throws -> Void
    }

    static func shapes<M: RPCMethod>(_ method: M.Type) -> (String, Shapes) where M.Params: KnownFields {
        (M.name, Shapes(
            params: { value throws(RPCErrorObject) in
                let params = try GantryJSON.decodeParams(M.Params.self, from: value)
                if let validated = params as? any ValidatedParams { try validated.validate() }
            },
            result: { value in
                _ = try GantryJSON.makeDecoder().decode(M.Result.self, from: GantryJSON.makeEncoder().encode(value))
            }))
    }

    static let methods: [String: Shapes] = Dictionary(uniqueKeysWithValues: [
        shapes(Hello.self), shapes(Enqueue.self), shapes(EnqueueBatch.self), shapes(Reserve.self), shapes(Ack.self),
        shapes(Nack.self), shapes(Extend.self), shapes(JobsGet.self), shapes(JobsList.self), shapes(JobsRetry.self),
        shapes(JobsCancel.self), shapes(JobsDiscard.self), shapes(Cleanup.self), shapes(Stats.self),
        shapes(QueuesPause.self), shapes(QueuesResume.self), shapes(QueuesList.self), shapes(QueuesConfigure.self),
        shapes(WorkersList.self), shapes(WorkersQuiet.self), shapes(WorkersStop.self), shapes(CronList.self),
        shapes(CronUpsert.self), shapes(CronDelete.self), shapes(CronPause.self), shapes(CronResume.self),
        shapes(CronTrigger.self), shapes(TypesRegister.self), shapes(TypesList.self), shapes(TypesGet.self), shapes(TypesDelete.self),
        shapes(OperationsStart.self), shapes(OperationsGet.self), shapes(OperationsList.self), shapes(OperationsRetry.self),
        shapes(OperationsCancel.self), shapes(EventsPublish.self), shapes(EventsGet.self), shapes(EventsList.self), shapes(EventsReplay.self),
        shapes(SubscriptionsUpsert.self), shapes(SubscriptionsList.self), shapes(SubscriptionsDelete.self), shapes(SubscriptionsPause.self),
        shapes(SubscriptionsResume.self),
        shapes(PackagesUpsert.self), shapes(PackagesList.self), shapes(PackagesGet.self), shapes(PackagesDelete.self), shapes(PackagesRun.self),
        shapes(PackagesExecutions.self), shapes(ExecutionsSave.self), shapes(ExecutionsSaved.self),
        shapes(Watch.self), shapes(Unwatch.self), shapes(WebhooksUpsert.self), shapes(WebhooksList.self), shapes(WebhooksDelete.self),
        shapes(WebhooksDeliveries.self),
    ])

    static let readme = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("proto-json/README.md")

    /// The transcripts: each fenced block's lines that start with `C: ` or `S: `, parsed, with their line numbers.
    static func transcripts() throws -> [[(line: Int, client: Bool, value: JSONValue?)]] {
        var blocks: [[(line: Int, client: Bool, value: JSONValue?)]] = []
        var current: [(line: Int, client: Bool, value: JSONValue?)]?
        for (index, text) in try String(contentsOf: readme, encoding: .utf8).components(separatedBy: "\n").enumerated() {
            if text.hasPrefix("```") {
                if let block = current, !block.isEmpty { blocks.append(block) }
                current = current == nil ? [] : nil
                continue
            }
            guard current != nil, text.hasPrefix("C: ") || text.hasPrefix("S: ") else { continue }
            let value = try? GantryJSON.makeDecoder().decode(JSONValue.self, from: Data(text.dropFirst(3).utf8))
            current?.append((index + 1, text.hasPrefix("C: "), value))
        }
        return blocks
    }

    @Test func everyMethodOfTheSpecHasItsSwiftTypes() throws {
        let text = try String(contentsOf: Self.readme, encoding: .utf8)
        let documented = text.components(separatedBy: "\n").filter { $0.hasPrefix("### ") }.map { String($0.dropFirst(4)) }
            .filter { $0.allSatisfy { $0.isLetter || $0 == "." || $0 == "_" } }
        #expect(Set(documented) == Set(Self.methods.keys), "methods with a ### section in proto-json/README.md")
    }

    @Test func theTranscriptsRequestsAndResultsDecodeIntoTheSwiftTypes() throws {
        var requests = 0
        var refusals = 0
        var results = 0
        for block in try Self.transcripts() {
            // Requests of the block by id, with their method, for matching answers.
            var asked: [JSONValue: (method: String, params: JSONValue?, line: Int)] = [:]
            for entry in block {
                guard let value = entry.value else { continue }
                if entry.client {
                    for request in value.arrayValue ?? [value] {
                        guard let method = request["method"]?.stringValue, let id = request["id"] else { continue }
                        asked[id] = (method, request["params"], entry.line)
                    }
                    continue
                }
                for answer in value.arrayValue ?? [value] {
                    guard let id = answer["id"], let request = asked[id], let shapes = Self.methods[request.method] else { continue }
                    if let result = answer["result"] {
                        requests += 1
                        do { try shapes.params(request.params) } catch {
                            Issue.record("README.md:\(request.line): \(request.method)'s params, answered with a result, are refused by the Swift type: \(error.message)")
                        }
                        results += 1
                        do { try shapes.result(result) } catch {
                            Issue.record("README.md:\(entry.line): \(request.method)'s result does not decode into the Swift type: \(error)")
                        }
                    } else if answer["error"]?["code"] == -32602, let field = answer["error"]?["data"]?["field"]?.stringValue {
                        refusals += 1
                        do {
                            try shapes.params(request.params)
                            // Some refusals need the broker's own state or checks (cron's ranges, limits): those
                            // are accepted here, and the README says so of each.
                        } catch {
                            #expect(error.data?["field"]?.stringValue == field,
                                    "README.md:\(request.line): the broker names \(field), the Swift type \(error.data?["field"]?.stringValue ?? "nothing")")
                        }
                    }
                }
            }
        }
        #expect(requests >= 27, "requests with results checked: \(requests)")
        #expect(results >= 27)
        print("proto-json README: \(requests) requests and \(results) results decode into the Swift types; \(refusals) refusals checked")
    }
}
