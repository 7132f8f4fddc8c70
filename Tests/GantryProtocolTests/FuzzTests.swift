import Foundation
import GantryProtocol
import GantryTesting
import LineReaderChecks
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
            var fields: JSONObject = [:]
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
                let text = Array(try! JSONWriter.data(request))
                bytes = Array(text.prefix(Int.random(in: 0...text.count, using: &rng)))
            default:
                bytes = Array(try! JSONWriter.data(Self.randomJSON(&rng)))
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

    /// The fast params reader (`KnownFields.fastDecode`) reads what Codable reads wherever it answers, and leaves
    /// everything else (wrong types, nulls where a value is needed, `5.0` for an integer) to the general path.
    @Test func theFastParamsReaderAgreesWithCodable() throws {
        var rng = SeededGenerator(seed: 0x6661_7374)
        let good: [String: [JSONValue]] = [
            "type": ["a.b", "x"], "args": [[], [1.0, "x"], ["k": .number("1e21")], .null], "queue": ["mail", .null],
            "priority": [1, 5, 32767, 0], "run_at": ["2030-01-31T10:00:09.250001Z", "2030-01-31T10:00:09Z"],
            "delay_ms": [0, 1500, -1], "max_attempts": [1, 25], "timeout_ms": [1, 60_000], "expires_at": ["2031-01-01T00:00:00Z"],
            "queue_timeout_ms": [5000], "unique_key": ["k", ""], "unique_for_ms": [1000], "tags": [[], ["x", "y"]],
            "meta": [[:], ["trace": "t"], .null],
        ]
        let odd: [JSONValue] = [.number("5.0"), .double(5), "5", .bool(true), [1], ["x": 1], "not a time", .number("1e3")]
        var fastAnswers = 0
        for _ in 0..<Self.cases {
            var fields: JSONObject = [:]
            for (key, values) in good where Bool.random(using: &rng) {
                fields[key] = Int.random(in: 0..<10, using: &rng) == 0 ? odd.randomElement(using: &rng)! : values.randomElement(using: &rng)!
            }
            if let fast = Enqueue.Params.fastDecode(fields) {
                fastAnswers += 1
                #expect(try JSONValueDecoder.decode(Enqueue.Params.self, from: .object(fields)) == fast, "\(fields)")
            }
            if let fast = EnqueueBatch.Params.fastDecode(["jobs": [.object(fields), ["type": "t"]]]) {
                #expect(try JSONValueDecoder.decode(EnqueueBatch.Params.self, from: ["jobs": [.object(fields), ["type": "t"]]]) == fast)
            }
        }
        #expect(fastAnswers > Self.cases / 4, "\(fastAnswers) of \(Self.cases) read by the fast reader")
    }

    /// Valid texts, and the same texts cut short or with a byte changed or added, pass the fuzz target's checks
    /// (LineReaderChecks: our reader agrees with Foundation's where Foundation keeps to the grammar, and what it
    /// reads round-trips exactly).
    @Test func readerAgreesWithFoundation() throws {
        var rng = SeededGenerator(seed: 0x7265_6164)
        var accepted = 0
        for round in 0..<Self.cases {
            var bytes = Array(try JSONWriter.data(Self.randomJSON(&rng), prettyPrinted: round % 7 == 0))
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: break
            case 1: bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng)))
            case 2 where !bytes.isEmpty:
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = Self.jsonishBytes.randomElement(using: &rng)!
            default:
                bytes.insert(Self.jsonishBytes.randomElement(using: &rng)!, at: Int.random(in: 0...bytes.count, using: &rng))
            }
            #expect(LineReaderChecks.problem(with: Data(bytes)) == nil)
            if (try? JSONReader.read(Data(bytes))) != nil { accepted += 1 }
        }
        #expect(accepted > Self.cases / 4 && accepted < Self.cases * 3 / 4, "\(accepted) accepted")
    }

    /// Bytes that make a JSON text subtly wrong (or subtly different) when one is changed or added.
    static let jsonishBytes = Array(#"{}[],:"\/ 0123456789.eE+-tfnulrsabu\#u{7F}"#.utf8) + [0x09, 0x0A, 0x01, 0xC3, 0xA9, 0xFF]

    @Test func argsKeepTheirSpellingThroughTheParams() throws {
        let args = #"[1.0,-0,-0.0,1e21,1E3,100000000000000000000000,{"b":1,"a":[2.50,"\u00e9"]},1e999,0.1,7]"#
        let line = Data(#"{"jsonrpc":"2.0","id":1,"method":"enqueue","params":{"type":"x","args":\#(args)}}"#.utf8)
        guard case .single(.success(let request)) = LineFraming.parse(line) else { Issue.record("not a request"); return }
        let params = try GantryJSON.decodeParams(Enqueue.Params.self, of: request)
        #expect(try JSONWriter.string(params.args) == args.replacingOccurrences(of: #"\u00e9"#, with: "é"))
        #expect(try JSONWriter.string(JSONValueEncoder.encode(params)).contains(#""args":[1.0,-0,-0.0,1e21,1E3,"#))
    }

    @Test func unknownFieldsOfBatchJobsAreNamed() throws {
        let line = Data(#"{"jsonrpc":"2.0","id":1,"method":"enqueue_batch","params":{"jobs":[{"type":"a"},{"type":"b","qeue":"x"}]}}"#.utf8)
        guard case .single(.success(let batch)) = LineFraming.parse(line) else { Issue.record("not a request"); return }
        #expect(throws: RPCErrorObject.self) { try GantryJSON.decodeParams(EnqueueBatch.Params.self, of: batch) }
        do { _ = try GantryJSON.decodeParams(EnqueueBatch.Params.self, of: batch) } catch {
            #expect(error.data?["field"]?.stringValue == "jobs[1].qeue")
        }
    }
}
