import Foundation
import GantryProtocol
import GantryTesting
import Testing

@Suite(.deadline(.seconds(60))) struct LineFramingTests {
    func parse(_ text: String) -> IncomingLine { LineFraming.parse(Data(text.utf8)) }

    @Test func blankLinesAreIgnored() {
        guard case .blank = parse("  \r") else { Issue.record("expected blank"); return }
    }

    @Test func malformedJSONIsAParseErrorWithNullID() {
        guard case .unusable(let error) = parse(#"{"jsonrpc":"2.0","id":1,"method":"#) else { Issue.record("expected unusable"); return }
        #expect(error.error.code == -32700)
        #expect(error.id == nil)
        #expect(error.error.message.contains("not valid JSON"))
    }

    @Test func invalidUTF8IsAParseError() {
        guard case .unusable(let error) = LineFraming.parse(Data([0x7B, 0xFF, 0xFE, 0x7D])) else { Issue.record("expected unusable"); return }
        #expect(error.error.code == -32700)
    }

    @Test func aRequestMustBeAnObject() {
        guard case .single(.failure(let error)) = parse("42") else { Issue.record("expected invalid request"); return }
        #expect(error.error.code == -32600)
        #expect(error.error.message.contains("JSON object"))
    }

    @Test func missingVersionKeepsTheIDSoTheClientCanMatchIt() {
        guard case .single(.failure(let error)) = parse(#"{"id":7,"method":"stats"}"#) else { Issue.record("expected invalid request"); return }
        #expect(error.error.code == -32600)
        #expect(error.id == .number(7))
        #expect(error.error.message.contains("jsonrpc"))
    }

    @Test func methodMustBeANonEmptyString() {
        guard case .single(.failure(let error)) = parse(#"{"jsonrpc":"2.0","id":"a","method":3}"#) else { Issue.record("expected invalid request"); return }
        #expect(error.id == .string("a"))
        #expect(error.error.message.contains("method"))
    }

    @Test func emptyBatchIsInvalid() {
        guard case .unusable(let error) = parse("[]") else { Issue.record("expected unusable"); return }
        #expect(error.error.code == -32600)
    }

    @Test func batchElementsAreCheckedOneByOne() {
        guard case .batch(let elements) = parse(#"[{"jsonrpc":"2.0","id":1,"method":"stats"}, 5]"#) else { Issue.record("expected batch"); return }
        #expect(elements.count == 2)
        guard case .success(let request) = elements[0], case .failure(let error) = elements[1] else { Issue.record("wrong shapes"); return }
        #expect(request.method == "stats")
        #expect(error.error.code == -32600)
    }

    @Test func notificationsHaveNoID() throws {
        guard case .single(.success(let request)) = parse(#"{"jsonrpc":"2.0","method":"stats"}"#) else { Issue.record("expected request"); return }
        #expect(request.isNotification)
    }

    @Test func responsesAlwaysCarryAnID() throws {
        let line = LineFraming.encode([RPCResponse(id: nil, error: .parseError("x"))], asBatch: false)
        let text = String(decoding: line, as: UTF8.self)
        #expect(text.contains(#""id":null"#))
        #expect(text.hasSuffix("\n"))
    }
}
