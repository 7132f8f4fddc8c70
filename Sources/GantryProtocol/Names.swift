/// The rules for names a client chooses: queues and job types.
public enum Names {
    public static let maxQueueLength = 128
    public static let maxTypeLength = 255

    /// Queue names are identifiers that read well in URLs, metrics labels and logs: letters, digits, `_ - . :`.
    public static func checkQueue(_ name: String, field: String) throws(RPCErrorObject) {
        guard !name.isEmpty, name.utf8.count <= maxQueueLength,
              name.unicodeScalars.allSatisfy({ $0.isASCII && (isAlphanumeric($0) || "_-.:".unicodeScalars.contains($0)) })
        else {
            throw .invalidParams(
                field: field,
                "must be 1 to \(maxQueueLength) characters of letters, digits, '_', '-', '.' or ':' (got \"\(name.prefix(60))\")")
        }
    }

    /// Job types are free text for people ("email.send", "Billing::Invoice"), but not empty, not huge, no control characters.
    public static func checkType(_ type: String, field: String = "type") throws(RPCErrorObject) {
        guard !type.isEmpty, type.utf8.count <= maxTypeLength,
              !type.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw .invalidParams(field: field, "must be 1 to \(maxTypeLength) bytes of text without control characters")
        }
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
    }
}
