import Foundation

/// Why some bytes are not JSON, and where (a byte offset from 0).
public struct JSONReadError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var offset: Int

    public var description: String { "\(reason) at byte \(offset + 1)" }
}

/// Reads JSON text (RFC 8259, UTF-8) into a `JSONValue` that keeps every number's spelling and every object's
/// member order. Ours because Foundation's reader keeps neither; the fuzz target in `Fuzz/` and the tests hold it to
/// Foundation's answers on which texts are JSON and what they mean.
public enum JSONReader {
    /// Deeper nesting than this is refused, so no input can exhaust the stack.
    public static let maxDepth = 512

    public static func read(_ data: Data) throws(JSONReadError) -> JSONValue {
        let result: Result<JSONValue, JSONReadError> = data.withUnsafeBytes { bytes in
            Result { () throws(JSONReadError) in try read(bytes) }
        }
        return try result.get()
    }

    public static func read(_ bytes: UnsafeRawBufferPointer) throws(JSONReadError) -> JSONValue {
        try readNotingRepeatedNames(bytes).value
    }

    /// Also says whether an object named a member twice (readers differ on which value wins), for the fuzz target.
    @_spi(Testing)
    public static func readNotingRepeatedNames(_ bytes: UnsafeRawBufferPointer) throws(JSONReadError) -> (value: JSONValue, repeatedNames: Bool) {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.readValue()
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.error("unexpected text after the JSON value") }
        return (value, parser.repeatedNames)
    }
}

struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    var depth = 0
    var repeatedNames = false

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    func error(_ reason: String, at offset: Int? = nil) -> JSONReadError {
        JSONReadError(reason: reason, offset: offset ?? index)
    }

    private var atEnd: Bool { index >= bytes.count }
    private var current: UInt8 { bytes[index] }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    mutating func readValue() throws(JSONReadError) -> JSONValue {
        guard !atEnd else { throw error("the text ends where a value should be") }
        switch current {
        case UInt8(ascii: "{"): return try readObject()
        case UInt8(ascii: "["): return try readArray()
        case UInt8(ascii: "\""): return .string(try readString())
        case UInt8(ascii: "t"): try readWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try readWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try readWord("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try readNumber()
        default: throw error("unexpected character \(describe(current)) where a value should be")
        }
    }

    private mutating func enter() throws(JSONReadError) {
        depth += 1
        guard depth <= JSONReader.maxDepth else { throw error("nesting deeper than \(JSONReader.maxDepth) levels") }
    }

    private mutating func readObject() throws(JSONReadError) -> JSONValue {
        try enter()
        index += 1
        var members = JSONObject()
        skipWhitespace()
        if !atEnd, current == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard !atEnd, current == UInt8(ascii: "\"") else { throw error("expected a member name in quotes") }
            let key = try readString()
            skipWhitespace()
            guard !atEnd, current == UInt8(ascii: ":") else { throw error("expected ':' after a member name") }
            index += 1
            skipWhitespace()
            // A repeated name keeps its first place and its last value, as PostgreSQL's jsonb does.
            if members.updateValue(try readValue(), forKey: key) != nil { repeatedNames = true }
            skipWhitespace()
            guard !atEnd else { throw error("the text ends inside an object") }
            if current == UInt8(ascii: ",") {
                index += 1
            } else if current == UInt8(ascii: "}") {
                index += 1
                depth -= 1
                return .object(members)
            } else {
                throw error("expected ',' or '}' in an object, got \(describe(current))")
            }
        }
    }

    private mutating func readArray() throws(JSONReadError) -> JSONValue {
        try enter()
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if !atEnd, current == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try readValue())
            skipWhitespace()
            guard !atEnd else { throw error("the text ends inside an array") }
            if current == UInt8(ascii: ",") {
                index += 1
            } else if current == UInt8(ascii: "]") {
                index += 1
                depth -= 1
                return .array(elements)
            } else {
                throw error("expected ',' or ']' in an array, got \(describe(current))")
            }
        }
    }

    private mutating func readWord(_ word: StaticString) throws(JSONReadError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count,
              memcmp(bytes.baseAddress! + index, word.utf8Start, count) == 0 else {
            throw error("unexpected character \(describe(current)) where a value should be")
        }
        index += count
    }

    /// A number, as `.int` or `.double` when Swift spells that value exactly as written, else as its text.
    private mutating func readNumber() throws(JSONReadError) -> JSONValue {
        let start = index
        if current == UInt8(ascii: "-") { index += 1 }
        guard !atEnd, isDigit(current) else { throw error("a number needs a digit after its sign") }
        if current == UInt8(ascii: "0") {
            index += 1
            if !atEnd, isDigit(current) { throw error("a number cannot start with 0 followed by digits") }
        } else {
            while !atEnd, isDigit(current) { index += 1 }
        }
        var isWhole = true
        if !atEnd, current == UInt8(ascii: ".") {
            isWhole = false
            index += 1
            guard !atEnd, isDigit(current) else { throw error("a number needs digits after its decimal point") }
            while !atEnd, isDigit(current) { index += 1 }
        }
        if !atEnd, current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isWhole = false
            index += 1
            if !atEnd, current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard !atEnd, isDigit(current) else { throw error("a number needs digits in its exponent") }
            while !atEnd, isDigit(current) { index += 1 }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if isWhole {
            if let value = Int64(text), text != "-0" { return .int(value) }
        } else if let value = Double(text), value.isFinite, value.description == text {
            return .double(value)
        }
        return .number(text)
    }

    /// A string starting at the opening quote; escapes are decoded and the result must be valid UTF-8.
    mutating func readString() throws(JSONReadError) -> String {
        let start = index
        index += 1
        let contentStart = index
        // The common case: no escapes, so the bytes are the string.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let content = UnsafeRawBufferPointer(rebasing: bytes[contentStart..<index])
                index += 1
                guard let text = String(validating: content, as: UTF8.self) else {
                    throw error("a string is not valid UTF-8", at: start)
                }
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("a control character must be escaped inside a string") }
            index += 1
        }
        guard index < bytes.count else { throw error("the text ends inside a string", at: start) }
        var decoded = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[contentStart..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let text = String(validating: decoded, as: UTF8.self) else {
                    throw error("a string is not valid UTF-8", at: start)
                }
                return text
            case UInt8(ascii: "\\"):
                try readEscape(into: &decoded)
            case ..<0x20:
                throw error("a control character must be escaped inside a string")
            default:
                decoded.append(byte)
                index += 1
            }
        }
        throw error("the text ends inside a string", at: start)
    }

    private mutating func readEscape(into decoded: inout [UInt8]) throws(JSONReadError) {
        let escapeStart = index
        index += 1
        guard !atEnd else { throw error("the text ends inside a string") }
        let letter = current
        index += 1
        switch letter {
        case UInt8(ascii: "\""): decoded.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): decoded.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "/"): decoded.append(UInt8(ascii: "/"))
        case UInt8(ascii: "b"): decoded.append(0x08)
        case UInt8(ascii: "f"): decoded.append(0x0C)
        case UInt8(ascii: "n"): decoded.append(0x0A)
        case UInt8(ascii: "r"): decoded.append(0x0D)
        case UInt8(ascii: "t"): decoded.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try readHex4()
            if (0xD800...0xDBFF).contains(scalar) {
                // A high surrogate must be followed by an escaped low one; together they are one scalar.
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                    throw error("an unpaired surrogate \\u escape", at: escapeStart)
                }
                index += 2
                let low = try readHex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw error("an unpaired surrogate \\u escape", at: escapeStart) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw error("an unpaired surrogate \\u escape", at: escapeStart)
            }
            decoded.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
        default:
            throw error("an unknown escape \\\(describe(letter)) in a string", at: escapeStart)
        }
    }

    private mutating func readHex4() throws(JSONReadError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("a \\u escape needs four hex digits") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("a \\u escape needs four hex digits")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private func describe(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : String(format: "0x%02X", byte)
    }
}
