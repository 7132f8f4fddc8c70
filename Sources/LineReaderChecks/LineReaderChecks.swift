import Foundation
@_spi(Testing) import GantryProtocol

// The checks one input to the broker's line reader (JSONReader) and params decoding must pass, run by the
// libFuzzer target (`Fuzz/LineReader`, `scripts/fuzz.sh`) and by the seeded tests (FuzzTests):
// - reading a line never crashes, and a line is a request, a batch, blank or one error answer;
// - our reader and Foundation's agree on whether it is JSON and what it means. Foundation alone also takes a
//   trailing comma, numbers such as `2-00` and `1e2.5`, unescaped control characters and unknown escapes in
//   strings, guesses UTF-16 and UTF-32 and lets some invalid UTF-8 through; it keeps the first of a repeated
//   name's values where ours keeps the last, and cannot hold a number beyond a Double, which ours keeps;
// - what ours read, written back and read again, is the same value spelled the same way;
// - the params of every request decode for several methods, or are refused with -32602 naming a field.

public enum LineReaderChecks {
    /// What is wrong with how Gantry reads `data`, or nil when every check holds.
    public static func problem(with data: Data) -> String? {
        do {
            try check(data)
            return nil
        } catch {
            return error.description
        }
    }

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    static func check(_ data: Data) throws(Problem) {
        let read = Result { try data.withUnsafeBytes { bytes in try JSONReader.readNotingRepeatedNames(bytes) } }
        try compareWithFoundation(read, data)
        if case .success(let (value, _)) = read { try checkRoundTrip(value, data) }
        switch LineFraming.parse(data) {
        case .blank, .unusable: break
        case .single(let request): try checkParams(request)
        case .batch(let requests): for request in requests { try checkParams(request) }
        }
    }

    static func compareWithFoundation(_ read: Result<(value: JSONValue, repeatedNames: Bool), any Error>, _ data: Data) throws(Problem) {
        // Too deep for either: Foundation's reader traps working out where (13 CRs and 513 `[` end the process,
        // which is why the broker no longer reads lines with it), so it is not asked.
        if case .failure(let error as JSONReadError) = read, error.reason.hasPrefix("nesting deeper") { return }
        // A name given twice: ours keeps the last value (as PostgreSQL, JavaScript, Python and Ruby do), Foundation
        // the first; that may also drop the number Foundation stumbled on.
        let repeated = (try? read.get().repeatedNames) == true
        let foundations = Result { try JSONDecoder().decode(JSONValue.self, from: data) }
        switch (read, foundations) {
        case (.success(let (value, _)), .success(let theirs)):
            guard sameMeaning(value, theirs) || repeated else { throw fail("the readers disagree", data, "\(value) vs \(theirs)") }
        case (.success(let (value, _)), .failure):
            guard !isFinite(value) || repeated else { throw fail("only ours read it", data, "\(value)") }
        case (.failure, .success(let theirs)):
            let foundationIsLenient = hasTrailingComma(data) || isNotUTF8JSONText(data) || hasMalformedNumber(data)
                || hasControlCharacter(data) || hasUnknownEscape(data)
            guard foundationIsLenient else { throw fail("only Foundation read it", data, "\(theirs)") }
        case (.failure, .failure):
            break
        }
    }

    static func checkRoundTrip(_ value: JSONValue, _ data: Data) throws(Problem) {
        guard let written = try? JSONWriter.data(value) else { throw fail("what was read cannot be written", data, "\(value)") }
        guard let reread = try? JSONReader.read(written), reread == value, spelling(reread) == spelling(value) else {
            throw fail("written and read again, it changed", data, String(decoding: written, as: UTF8.self))
        }
        guard (try? JSONWriter.data(reread)) == written else { throw fail("written twice, it differs", data, "") }
    }

    static func checkParams(_ request: Result<RPCRequest, RPCErrorResponse>) throws(Problem) {
        guard case .success(let request) = request, case .object? = request.params else { return }
        func attempt<Params: Decodable & KnownFields>(_ type: Params.Type) throws(Problem) {
            do {
                _ = try GantryJSON.decodeParams(type, of: request)
            } catch {
                guard error.code == -32602, error.data?["field"]?.stringValue?.isEmpty == false else {
                    throw fail("params refused without naming a field", Data(), "\(error)")
                }
            }
        }
        /// The fast reader, where it answers, reads what Codable reads.
        func sameAsCodable<Params: KnownFields & Decodable & Equatable>(_ type: Params.Type) throws(Problem) {
            guard case .object(let fields)? = request.params, let fast = Params.fastDecode(fields) else { return }
            guard let general = try? JSONValueDecoder.decode(Params.self, from: .object(fields)) else {
                throw fail("the fast params reader took params Codable refuses", Data(), "\(fast)")
            }
            guard general == fast else { throw fail("the fast params reader disagrees with Codable", Data(), "\(fast) against \(general)") }
        }
        try sameAsCodable(Enqueue.Params.self)
        try sameAsCodable(EnqueueBatch.Params.self)
        try attempt(Enqueue.Params.self)
        try attempt(EnqueueBatch.Params.self)
        try attempt(Reserve.Params.self)
        try attempt(Ack.Params.self)
        try attempt(Nack.Params.self)
        try attempt(CronUpsert.Params.self)
    }

    /// Equal values, numbers compared as Doubles to within rounding (Foundation reads `-10000000000000001.02`
    /// as an Int64), objects whatever their order.
    static func sameMeaning(_ ours: JSONValue, _ theirs: JSONValue) -> Bool {
        switch (ours, theirs) {
        case (.int, _), (.double, _), (.number, _):
            guard let a = ours.doubleValue, let b = theirs.doubleValue else { return false }
            return a == b || abs(a - b) <= 1e-12 * max(abs(a), abs(b))
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy(sameMeaning)
        case (.object(let a), .object(let b)):
            return a.count == b.count && a.allSatisfy { key, value in b[key].map { sameMeaning(value, $0) } ?? false }
        default:
            return ours == theirs
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

    /// Foundation reads some runs of number characters that JSON's grammar does not (`2-00`, `1e2.5`).
    static func hasMalformedNumber(_ data: Data) -> Bool {
        String(decoding: data, as: UTF8.self).matches(of: /[-0-9][-+0-9.eE]*/).contains { run in
            run.output.wholeMatch(of: /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/) == nil
        }
    }

    /// Foundation takes control characters inside strings unescaped; JSON's grammar does not.
    static func hasControlCharacter(_ data: Data) -> Bool {
        data.contains { $0 < 0x20 }
    }

    /// Foundation takes escapes JSON has not (`\#`, `\u.0`) and `\u` escapes of unpaired surrogates (`\udddd`).
    static func hasUnknownEscape(_ data: Data) -> Bool {
        var bytes = data.makeIterator()
        var expectingLowSurrogate = false
        while let byte = bytes.next() {
            guard byte == UInt8(ascii: "\\") else {
                if expectingLowSurrogate { return true }
                continue
            }
            guard let letter = bytes.next(), Array(#""\/bfnrtu"#.utf8).contains(letter) else { return true }
            guard letter == UInt8(ascii: "u") else {
                if expectingLowSurrogate { return true }
                continue
            }
            var hex = ""
            for _ in 0..<4 {
                guard let digit = bytes.next(), Character(Unicode.Scalar(digit)).isHexDigit else { return true }
                hex.append(Character(Unicode.Scalar(digit)))
            }
            let unit = UInt16(hex, radix: 16)!
            switch unit {
            case 0xD800...0xDBFF where !expectingLowSurrogate: expectingLowSurrogate = true
            case 0xDC00...0xDFFF where expectingLowSurrogate: expectingLowSurrogate = false
            case 0xD800...0xDFFF: return true
            default: if expectingLowSurrogate { return true }
            }
        }
        return expectingLowSurrogate
    }

    static func hasTrailingComma(_ data: Data) -> Bool {
        String(decoding: data, as: UTF8.self).contains(/,[ \t\r\n]*[\]}]/)
    }

    /// Foundation guesses UTF-16 and UTF-32 from zero bytes and byte order marks, and lets some invalid UTF-8
    /// through; the wire is UTF-8 only, where a JSON text holds no zero byte and no byte order mark.
    static func isNotUTF8JSONText(_ data: Data) -> Bool {
        data.contains(0) || data.starts(with: [0xEF, 0xBB, 0xBF]) || String(validating: data, as: UTF8.self) == nil
    }

    static func fail(_ what: String, _ data: Data, _ detail: String) -> Problem {
        Problem(description: "\(what): \(Array(data)) \(String(decoding: data, as: UTF8.self)) — \(detail)")
    }
}
