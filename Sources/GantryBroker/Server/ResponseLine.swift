import Foundation
import GantryProtocol

/// Builds response lines. Results arrive already encoded, so they are spliced in rather than decoded again.
enum ResponseLine {
    static func success(id: RPCID?, result: Data) -> Data {
        var line = Data(#"{"id":"#.utf8)
        line.append(encodedID(id))
        line.append(contentsOf: #","jsonrpc":"2.0","result":"#.utf8)
        line.append(result)
        line.append(UInt8(ascii: "}"))
        return line
    }

    static func failure(_ error: RPCErrorResponse) -> Data {
        (try? GantryJSON.makeEncoder().encode(error.response)) ?? Data(#"{"id":null,"jsonrpc":"2.0","error":{"code":-32603,"message":"unencodable error"}}"#.utf8)
    }

    static func answer(id: RPCID?, _ outcome: Result<Data, RPCErrorObject>) -> Data {
        switch outcome {
        case .success(let result): success(id: id, result: result)
        case .failure(let error): failure(RPCErrorResponse(id: id, error: error))
        }
    }

    /// Joins a batch's answers into one array line; nil when every request was a notification.
    static func batch(_ answers: [Data]) -> Data? {
        guard !answers.isEmpty else { return nil }
        var line = Data("[".utf8)
        for (index, answer) in answers.enumerated() {
            if index > 0 { line.append(UInt8(ascii: ",")) }
            line.append(answer)
        }
        line.append(UInt8(ascii: "]"))
        return line
    }

    private static func encodedID(_ id: RPCID?) -> Data {
        switch id {
        case nil: return Data("null".utf8)
        case .number(let number)?: return Data(String(number).utf8)
        case .string(let text)?:
            var bytes: [UInt8] = []
            JSONWriter.writeString(text, into: &bytes)
            return Data(bytes)
        }
    }
}
