import GantryProtocol
import NIOCore
import PostgresNIO

// JSON values go to PostgreSQL as `json` text, spelled as the client sent them, and come back through the same
// reader; `json` columns (args, meta, result) keep that spelling, `jsonb` ones (errors) their own.
extension JSONValue: PostgresEncodable, PostgresDecodable {
    public static var psqlType: PostgresDataType { .json }
    public static var psqlFormat: PostgresFormat { .binary }

    public func encode<Encoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<Encoder>) throws {
        var bytes: [UInt8] = []
        try JSONWriter.write(self, into: &bytes)
        buffer.writeBytes(bytes)
    }

    public init<Decoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<Decoder>
    ) throws {
        switch (format, type) {
        case (.binary, .jsonb):
            // jsonb's binary form is a version byte, then the text.
            guard buffer.readInteger(as: UInt8.self) == 1 else { throw PostgresDecodingError.Code.failure }
        case (.binary, .json), (_, .text), (.text, .json), (.text, .jsonb):
            break
        default:
            throw PostgresDecodingError.Code.typeMismatch
        }
        let value = buffer.readableBytesView.withUnsafeBytes { bytes in Result { () throws(JSONReadError) in try JSONReader.read(bytes) } }
        self = try value.get()
        buffer.moveReaderIndex(to: buffer.writerIndex)
    }
}
