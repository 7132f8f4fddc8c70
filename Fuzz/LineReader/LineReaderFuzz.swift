import Foundation
import GantryProtocol

// A coverage-guided fuzz target for the broker's line reader (JSONReader) and params decoding, built with
// libFuzzer (`scripts/fuzz.sh`). For every input:
// - reading a line never crashes, and a line is a request, a batch, blank or one error answer;
// - our reader and Foundation's agree on whether it is JSON and what it means (Foundation alone also takes a
//   trailing comma, and cannot hold a number beyond a Double, which ours keeps as written);
// - what ours read, written back and read again, is the same value spelled the same way;
// - the params of every request decode for several methods, or are refused with -32602 naming a field.
// Built without `-DFUZZING` it replays the files or directories it is given, for CI and for reproducing a find.

enum LineReaderFuzz {
    static func check(_ data: Data) {
        let ours = Result { try JSONReader.read(data) }
        let foundations = Result { try JSONDecoder().decode(JSONValue.self, from: data) }
        switch (ours, foundations) {
        case (.success(let value), .success(let theirs)):
            guard plain(value) == plain(theirs) else { fail("the readers disagree", data, "\(value) vs \(theirs)") }
        case (.success(let value), .failure):
            guard !isFinite(value) else { fail("only ours read it", data, "\(value)") }
        case (.failure, .success(let theirs)):
            guard hasTrailingComma(data) else { fail("only Foundation read it", data, "\(theirs)") }
        case (.failure, .failure):
            break
        }
        if case .success(let value) = ours { checkRoundTrip(value, data) }
        switch LineFraming.parse(data) {
        case .blank, .unusable: break
        case .single(let request): checkParams(request)
        case .batch(let requests): requests.forEach(checkParams)
        }
    }

    static func checkRoundTrip(_ value: JSONValue, _ data: Data) {
        guard let written = try? JSONWriter.data(value) else { fail("what was read cannot be written", data, "\(value)") }
        guard let reread = try? JSONReader.read(written), reread == value, spelling(reread) == spelling(value) else {
            fail("written and read again, it changed", data, String(decoding: written, as: UTF8.self))
        }
        guard (try? JSONWriter.data(reread)) == written else { fail("written twice, it differs", data, "") }
    }

    static func checkParams(_ request: Result<RPCRequest, RPCErrorResponse>) {
        guard case .success(let request) = request, case .object? = request.params else { return }
        func attempt<Params: Decodable & KnownFields>(_ type: Params.Type) {
            do {
                _ = try GantryJSON.decodeParams(type, of: request)
            } catch {
                guard error.code == -32602, error.data?["field"]?.stringValue?.isEmpty == false else {
                    fail("params refused without naming a field", Data(), "\(error)")
                }
            }
        }
        attempt(Enqueue.Params.self)
        attempt(EnqueueBatch.Params.self)
        attempt(Reserve.Params.self)
        attempt(Ack.Params.self)
        attempt(Nack.Params.self)
        attempt(CronUpsert.Params.self)
    }

    /// Numbers as Doubles and objects unordered (JSONValue's ==), so two readers compare by meaning.
    static func plain(_ value: JSONValue) -> JSONValue {
        switch value {
        case .int, .double, .number: .double(value.doubleValue!)
        case .array(let elements): .array(elements.map(plain))
        case .object(let members): .object(members.mapValues(plain))
        default: value
        }
    }

    /// The text with every number's spelling and every member's place, which == does not look at.
    static func spelling(_ value: JSONValue) -> String {
        (try? JSONWriter.string(value)) ?? ""
    }

    static func isFinite(_ value: JSONValue) -> Bool {
        switch value {
        case .int, .double, .number: value.doubleValue!.isFinite
        case .array(let elements): elements.allSatisfy(isFinite)
        case .object(let members): members.values.allSatisfy(isFinite)
        default: true
        }
    }

    static func hasTrailingComma(_ data: Data) -> Bool {
        String(decoding: data, as: UTF8.self).contains(/,[ \t\r\n]*[\]}]/)
    }

    static func fail(_ what: String, _ data: Data, _ detail: String) -> Never {
        fatalError("\(what): \(Array(data)) \(String(decoding: data, as: UTF8.self)) — \(detail)")
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    LineReaderFuzz.check(Data(bytes: start, count: count))
    return 0
}
#else
@main
struct ReplayCorpus {
    static func main() throws {
        var replayed = 0
        for path in CommandLine.arguments.dropFirst() {
            let url = URL(fileURLWithPath: path)
            let files = (try? FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil)) ?? [url]
            for file in files {
                LineReaderFuzz.check(try Data(contentsOf: file))
                replayed += 1
            }
        }
        print("replayed \(replayed) inputs: no crash, no disagreement")
    }
}
#endif
