import Foundation
import GantryProtocol
import GantryTesting
import Testing

/// Our JSON reader and writer, and Codable through JSONValue: spelling and order kept, the grammar enforced.
@Suite(.deadline(.seconds(60))) struct JSONTests {
    func read(_ text: String) throws -> JSONValue { try JSONReader.read(Data(text.utf8)) }

    @Test func numbersAndMembersComeBackAsWritten() throws {
        for text in [#"{"b":1.0,"a":[-0,-0.0,2.50,1e21,1E-7,100000000000000000000001,1e999,7,0.1]}"#, "[]", "{}", #""""#, "null"] {
            #expect(try JSONWriter.string(read(text)) == text)
        }
        #expect(try read("1.5") == .double(1.5))
        #expect(try read("1.0") == .double(1.0), "Swift spells 1.0 the same")
        #expect(try read("1e21") == .number("1e21"), "Swift would spell it 1e+21")
        #expect(try read("-0") == .number("-0"))
        #expect(try read("9223372036854775807") == .int(.max))
        #expect(try read("9223372036854775808") == .number("9223372036854775808"))
    }

    @Test func stringsDecodeTheirEscapesAndAreWrittenBackEscapedWhereJSONNeedsIt() throws {
        #expect(try read(#""\u00e9\ud83d\ude00\n\"\\\/""#) == .string("é😀\n\"\\/"))
        #expect(try JSONWriter.string(.string("a\"b\\c\n\u{1}/é")) == #""a\"b\\c\n\u0001/é""#)
    }

    @Test func textsOutsideTheGrammarAreRefusedSayingWhere() throws {
        for (text, reason) in [("[1,]", "unexpected character ']'"), ("01", "cannot start with 0"), ("1.", "digits after its decimal point"),
                               (#""\x""#, "unknown escape"), (#""\udc00""#, "unpaired surrogate"), ("\"a\u{1}\"", "control character"),
                               ("{\"a\" 1}", "expected ':'"), ("[1] 2", "after the JSON value"), ("", "ends where a value should be"),
                               (String(repeating: "[", count: 513), "nesting deeper than 512")] {
            #expect(throws: JSONReadError.self, "\(text)") { try read(text) }
            do { _ = try read(text) } catch let error as JSONReadError { #expect(error.reason.contains(reason), "\(text): \(error)") }
        }
        #expect(throws: JSONReadError.self) { try JSONReader.read(Data([0x22, 0xC3, 0x28, 0x22])) }
    }

    @Test func aNameGivenTwiceKeepsItsFirstPlaceAndItsLastValue() throws {
        #expect(try JSONWriter.string(read(#"{"a":1,"b":2,"a":3}"#)) == #"{"a":3,"b":2}"#)
    }

    @Test func codableGoesThroughJSONValueWithTheWiresConventions() throws {
        struct Sample: Codable, Equatable {
            var at: Date
            var counts: [String: Int]
            var args: JSONValue
            var note: String?
        }
        let sample = Sample(at: Date(timeIntervalSince1970: 1_800_000_000.5), counts: ["b": 1, "a": 2], args: [.number("2.50"), ["z": 1, "y": 2]])
        let text = String(decoding: try GantryJSON.makeEncoder().encode(sample), as: UTF8.self)
        #expect(text == #"{"at":"2027-01-15T08:00:00.500Z","counts":{"a":2,"b":1},"args":[2.50,{"z":1,"y":2}]}"#)
        #expect(try GantryJSON.makeDecoder().decode(Sample.self, from: Data(text.utf8)) == sample)
        #expect(throws: DecodingError.self) { try GantryJSON.makeDecoder().decode(Sample.self, from: Data(#"{"at":"soon"}"#.utf8)) }
    }
}

@Suite(.deadline(.seconds(60))) struct UnstorableValueTests {
    @Test func numbersBeyondPostgresNumericAreNamedByPath() throws {
        let fits = ["1e131071", "-1.5e300", "1e-16383", "0.000e-999999", "0", "123456789012345678901234567890", "1e999"]
        for text in fits { #expect(!JSONValue.beyondNumeric(text), "\(text)") }
        let beyond = ["1e131072", "1e1000000", "-1e-16384", "1.5e-16383", "1e99999999999999999999999", "1e-99999999999999999999999"]
        for text in beyond { #expect(JSONValue.beyondNumeric(text), "\(text)") }
        let args: JSONValue = ["a": [1, .number("1e1000000")]]
        #expect(args.unstorable("args")?.path == "args.a[1]")
        #expect(JSONValue.object(["x\u{0}": 1]).unstorable()?.path == "x\u{0}")
        #expect(JSONValue.array([.number("2.50")]).unstorable() == nil)
    }
}
