import Foundation

/// A value JSON cannot spell (a non-finite Double made in code), and where it is.
public struct JSONWriteError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Writes a `JSONValue` as compact JSON text (or indented, for people), each number as spelled and each object's
/// members in order: what `JSONReader` read comes back byte for byte, up to whitespace and string escapes.
public enum JSONWriter {
    public static func data(_ value: JSONValue, prettyPrinted: Bool = false) throws(JSONWriteError) -> Data {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128)
        try write(value, into: &bytes, indent: prettyPrinted ? 0 : nil)
        return Data(bytes)
    }

    public static func string(_ value: JSONValue, prettyPrinted: Bool = false) throws(JSONWriteError) -> String {
        var bytes: [UInt8] = []
        try write(value, into: &bytes, indent: prettyPrinted ? 0 : nil)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the value's text; `indent` is the current depth when pretty-printing, nil when compact.
    public static func write(_ value: JSONValue, into bytes: inout [UInt8], indent: Int? = nil) throws(JSONWriteError) {
        switch value {
        case .null: bytes.append(contentsOf: "null".utf8)
        case .bool(let flag): bytes.append(contentsOf: (flag ? "true" : "false").utf8)
        case .int(let number): bytes.append(contentsOf: String(number).utf8)
        case .double(let number):
            guard number.isFinite else { throw JSONWriteError(description: "JSON has no spelling for \(number)") }
            bytes.append(contentsOf: number.description.utf8)
        case .number(let text): bytes.append(contentsOf: text.utf8)
        case .string(let text): writeString(text, into: &bytes)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { bytes.append(UInt8(ascii: ",")) }
                newline(into: &bytes, depth: indent.map { $0 + 1 })
                try write(element, into: &bytes, indent: indent.map { $0 + 1 })
            }
            if !elements.isEmpty { newline(into: &bytes, depth: indent) }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            var first = true
            for (key, member) in members {
                if !first { bytes.append(UInt8(ascii: ",")) }
                first = false
                newline(into: &bytes, depth: indent.map { $0 + 1 })
                writeString(key, into: &bytes)
                bytes.append(UInt8(ascii: ":"))
                if indent != nil { bytes.append(UInt8(ascii: " ")) }
                try write(member, into: &bytes, indent: indent.map { $0 + 1 })
            }
            if !members.isEmpty { newline(into: &bytes, depth: indent) }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    private static func newline(into bytes: inout [UInt8], depth: Int?) {
        guard let depth else { return }
        bytes.append(UInt8(ascii: "\n"))
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: depth * 2))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    public static func writeString(_ text: String, into bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case ..<0x20:
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                          hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
