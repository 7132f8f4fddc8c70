import Foundation
import GantryProtocol
import GantryTesting
import Testing

/// Seeded random inputs for the framing and params layers: whatever arrives, the answer is a classification or
/// an error naming a field — never a crash. Bounded, so CI runs it every time; the seed makes failures replayable.
@Suite(.deadline(.seconds(60))) struct FuzzTests {
    static let cases = 20_000

    static func randomJSON(_ rng: inout SeededGenerator, depth: Int = 0) -> JSONValue {
        switch Int.random(in: 0..<(depth > 4 ? 6 : 8), using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .int(Int64.random(in: -40_000...40_000, using: &rng))
        case 3: return .int(Int64.random(in: Int64.min...Int64.max, using: &rng))
        case 4: return .double(Double.random(in: -1e20...1e20, using: &rng))
        case 5: return .string(randomText(&rng))
        case 6: return .array((0..<Int.random(in: 0..<4, using: &rng)).map { _ in randomJSON(&rng, depth: depth + 1) })
        default:
            let keys = ["type", "queue", "queues", "priority", "args", "id", "ids", "max", "wait_ms", "error", "message",
                        "retry", "delay_ms", "run_at", "meta", "tags", "jobs", "worker", "lease_ms", randomText(&rng)]
            var fields: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0..<5, using: &rng) {
                fields[keys.randomElement(using: &rng)!] = randomJSON(&rng, depth: depth + 1)
            }
            return .object(fields)
        }
    }

    static func randomText(_ rng: inout SeededGenerator) -> String {
        let pieces = ["", "default", "mail", "a b", "é", "\u{0}", "'; DROP TABLE x; --", "2030-01-01T00:00:00Z", "42", "\"", "\\", "q:1.x-y_z"]
        return (0..<Int.random(in: 1...3, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }

    @Test func randomLinesAreAlwaysClassified() {
        var rng = SeededGenerator(seed: 0x6761_6E74)
        for _ in 0..<Self.cases {
            let bytes: [UInt8]
            switch Int.random(in: 0..<3, using: &rng) {
            case 0:
                bytes = (0..<Int.random(in: 0..<120, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1:
                let request: JSONValue = ["jsonrpc": "2.0", "id": 1, "method": "enqueue", "params": Self.randomJSON(&rng)]
                let text = Array(try! JSONEncoder().encode(request))
                bytes = Array(text.prefix(Int.random(in: 0...text.count, using: &rng)))
            default:
                bytes = Array(try! JSONEncoder().encode(Self.randomJSON(&rng)))
            }
            switch LineFraming.parse(Data(bytes)) {
            case .blank, .single, .batch: break
            case .unusable(let error): #expect([-32700, -32600].contains(error.error.code))
            }
        }
    }

    @Test func randomParamsAreAcceptedOrRefusedByField() {
        var rng = SeededGenerator(seed: 0x7472_7973)
        func check<Params: Decodable & KnownFields & ValidatedParams>(_ type: Params.Type, _ value: JSONValue) {
            do {
                try GantryJSON.decodeParams(type, from: value).validate()
            } catch {
                #expect(error.code == -32602)
                #expect(error.data?["field"]?.stringValue?.isEmpty == false, "\(error.message) for \(value)")
            }
        }
        for _ in 0..<Self.cases {
            let value = Self.randomJSON(&rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: check(Enqueue.Params.self, value)
            case 1: check(EnqueueBatch.Params.self, ["jobs": .array([value, Self.randomJSON(&rng)])])
            case 2: check(Reserve.Params.self, value)
            case 3: check(Nack.Params.self, value)
            case 4: check(Extend.Params.self, value)
            default: check(Hello.Params.self, value)
            }
        }
    }

    /// The request as it arrives on a line, and the params `LineFraming` left in it.
    static func lineRequest(_ method: String, _ params: String) -> RPCRequest? {
        let line = Data(#"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":\#(params)}"#.utf8)
        guard case .single(.success(let request)) = LineFraming.parse(line) else { return nil }
        return request
    }

    /// Params read straight from the line (the broker's fast path) come out exactly as through a JSON value:
    /// the same params, or the same error naming the same field.
    @Test func paramsReadFromTheLineMatchTheGeneralWay() throws {
        var rng = SeededGenerator(seed: 0x6C69_6E65)
        var accepted = 0
        func check<Params: Decodable & KnownFields & Equatable>(_ type: Params.Type, _ method: String, _ value: JSONValue) throws {
            let text = String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
            guard let request = Self.lineRequest(method, text) else { Issue.record("not one request: \(text)"); return }
            #expect(request.paramsSource == .inLine(Data(#"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":\#(text)}"#.utf8)))
            let fromLine = Result { () throws(RPCErrorObject) in try GantryJSON.decodeParams(type, of: request) }
            let fromValue = Result { () throws(RPCErrorObject) in try GantryJSON.decodeParams(type, from: value) }
            #expect(fromLine == fromValue, "\(text)")
            if case .success = fromLine { accepted += 1 }
        }
        // Mostly near-valid params, so the fast path is taken, with random members mixed in.
        func near(_ base: [String: JSONValue]) -> JSONValue {
            var fields = base
            if case .object(let extra) = Self.randomJSON(&rng, depth: 4) { fields.merge(extra) { _, new in new } }
            return .object(fields)
        }
        for _ in 0..<5_000 {
            switch Int.random(in: 0..<5, using: &rng) {
            case 0: try check(Enqueue.Params.self, "enqueue", near(["type": "x", "args": Self.randomJSON(&rng)]))
            case 1: try check(EnqueueBatch.Params.self, "enqueue_batch", ["jobs": .array([near(["type": "a"]), near(["type": "b"])])])
            case 2: try check(Reserve.Params.self, "reserve", near(["queues": ["a"]]))
            case 3: try check(Nack.Params.self, "nack", near(["id": "1", "error": ["message": "m"]]))
            default: try check(QueuesConfigure.Params.self, "queues.configure", near(["queue": "q", "rate_limit": near(["limit": 1, "period_ms": 10])]))
            }
        }
        // Both outcomes were exercised: params accepted (the fast path's own answer) and refused.
        #expect(accepted > 500 && accepted < 4_500, "\(accepted) of 5,000 accepted")
    }

    @Test func numbersBeyondADoubleAreNamedFromTheLineToo() throws {
        let request = try #require(Self.lineRequest("enqueue", #"{"type":"x","args":[1, 1e999]}"#))
        #expect(throws: RPCErrorObject.invalidParams(field: "args[1]", "holds a number too large for a 64-bit float; send it as a string")) {
            try GantryJSON.decodeParams(Enqueue.Params.self, of: request)
        }
        let batch = try #require(Self.lineRequest("enqueue_batch", #"{"jobs":[{"type":"a"},{"type":"b","qeue":"x"}]}"#))
        #expect(throws: RPCErrorObject.self) { try GantryJSON.decodeParams(EnqueueBatch.Params.self, of: batch) }
        do { _ = try GantryJSON.decodeParams(EnqueueBatch.Params.self, of: batch) } catch {
            #expect(error.data?["field"]?.stringValue == "jobs[1].qeue")
        }
    }
}
