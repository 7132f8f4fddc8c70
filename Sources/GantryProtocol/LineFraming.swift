import Foundation

/// What one received line holds, once parsed: newline-delimited JSON-RPC, one value per line.
public enum IncomingLine: Sendable {
    /// A line with nothing but whitespace: ignored, so people typing into `nc` can press Enter freely.
    case blank
    case single(Result<RPCRequest, RPCErrorResponse>)
    case batch([Result<RPCRequest, RPCErrorResponse>])
    /// Not JSON, or a JSON value that is no request at all: answered once with id null.
    case unusable(RPCErrorResponse)
}

public enum LineFraming {
    public static let newline = UInt8(ascii: "\n")

    public static func parse(_ line: Data) -> IncomingLine {
        guard line.contains(where: { !isWhitespace($0) }) else { return .blank }
        let value: JSONValue
        do {
            value = try JSONReader.read(line)
        } catch {
            return .unusable(RPCErrorResponse(id: nil, error: .parseError(error.description)))
        }
        if case .array(let elements) = value {
            guard !elements.isEmpty else {
                return .unusable(RPCErrorResponse(id: nil, error: .invalidRequest("a batch must hold at least one request")))
            }
            return .batch(elements.map(RPCRequest.validate))
        }
        return .single(RPCRequest.validate(value))
    }

    /// Encodes one response (or a batch of them) as a line, ending in `\n`.
    public static func encode(_ responses: [RPCResponse], asBatch: Bool, encoder: GantryJSONEncoder = GantryJSON.makeEncoder()) -> Data {
        var data: Data
        do {
            data = asBatch ? try encoder.encode(responses) : try encoder.encode(responses[0])
        } catch {
            // Only a non-finite double can fail here; say so rather than drop the answer.
            let fallback = RPCResponse(id: responses.first?.id, error: .internalError("the result could not be encoded as JSON: \(error)"))
            data = (try? encoder.encode(fallback)) ?? Data()
        }
        data.append(newline)
        return data
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }
}
