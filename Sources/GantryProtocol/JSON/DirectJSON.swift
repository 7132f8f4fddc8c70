import Foundation

/// An answer type that writes its wire JSON itself, member by member, instead of through Codable: the answers of
/// `jobs.get`, `reserve`, `enqueue` and `ack` go out on nearly every request, and Codable's walk (a container
/// per value, a dynamic cast per member) cost more than the rest of a `jobs.get` together. Each writer spells
/// exactly what its `Encodable` conformance spells (members in CodingKeys order, nil optionals left out):
/// `DirectJSONTests` holds the two to the same bytes.
public protocol DirectJSONWritable: Encodable {
    func writeJSON(into object: inout JSONObjectWriter) throws(JSONWriteError)
}

/// Appends one JSON object's members to a byte buffer.
public struct JSONObjectWriter {
    public private(set) var bytes: [UInt8]
    private var empty = true

    public init(into bytes: [UInt8] = []) {
        self.bytes = bytes
        self.bytes.append(UInt8(ascii: "{"))
    }

    public mutating func close() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    /// `,"key":` (keys are the types' own coding keys: plain ASCII, nothing to escape).
    private mutating func key(_ name: StaticString) {
        if !empty { bytes.append(UInt8(ascii: ",")) }
        empty = false
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    public mutating func string(_ name: StaticString, _ value: String?) {
        guard let value else { return }
        key(name)
        JSONWriter.writeString(value, into: &bytes)
    }

    public mutating func integer(_ name: StaticString, _ value: (some BinaryInteger)?) {
        guard let value else { return }
        key(name)
        bytes.append(contentsOf: String(value).utf8)
    }

    public mutating func bool(_ name: StaticString, _ value: Bool?) {
        guard let value else { return }
        key(name)
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    public mutating func date(_ name: StaticString, _ value: Date?) {
        guard let value else { return }
        key(name)
        JSONWriter.writeString(GantryJSON.formatTimestamp(value), into: &bytes)
    }

    public mutating func value(_ name: StaticString, _ value: JSONValue?) throws(JSONWriteError) {
        guard let value else { return }
        key(name)
        try JSONWriter.write(value, into: &bytes)
    }

    public mutating func strings(_ name: StaticString, _ values: [String]?) {
        guard let values else { return }
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (position, value) in values.enumerated() {
            if position > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONWriter.writeString(value, into: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    public mutating func object(_ name: StaticString, _ value: (some DirectJSONWritable)?) throws(JSONWriteError) {
        guard let value else { return }
        key(name)
        try Self.write(value, into: &bytes)
    }

    public mutating func objects(_ name: StaticString, _ values: [some DirectJSONWritable]?) throws(JSONWriteError) {
        guard let values else { return }
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (position, value) in values.enumerated() {
            if position > 0 { bytes.append(UInt8(ascii: ",")) }
            try Self.write(value, into: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// A member without a writer of its own (rare on the hot path: a job's errors), through Codable.
    public mutating func encodable(_ name: StaticString, _ value: (some Encodable)?) throws(JSONWriteError) {
        guard let value else { return }
        key(name)
        do {
            try JSONWriter.write(try JSONValueEncoder.encode(value), into: &bytes)
        } catch let error as JSONWriteError {
            throw error
        } catch {
            throw JSONWriteError(description: "\(error)")
        }
    }

    static func write(_ value: some DirectJSONWritable, into bytes: inout [UInt8]) throws(JSONWriteError) {
        var object = JSONObjectWriter(into: bytes)
        bytes = []
        try value.writeJSON(into: &object)
        bytes = object.close()
    }

    /// An array of such values as JSON text.
    public static func array(_ values: [some DirectJSONWritable]) throws(JSONWriteError) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(ascii: "[")]
        bytes.reserveCapacity(values.count * 160)
        for (position, value) in values.enumerated() {
            if position > 0 { bytes.append(UInt8(ascii: ",")) }
            try write(value, into: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
        return bytes
    }

    /// The whole value as JSON text.
    public static func data(_ value: some DirectJSONWritable) throws(JSONWriteError) -> Data {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        try write(value, into: &bytes)
        return Data(bytes)
    }
}

extension Job: DirectJSONWritable {
    public func writeJSON(into object: inout JSONObjectWriter) throws(JSONWriteError) {
        object.string("id", id)
        object.string("type", type)
        object.string("queue", queue)
        try object.value("args", args)
        object.string("state", state.rawValue)
        object.integer("priority", priority)
        object.integer("attempt", attempt)
        object.strings("tags", tags)
        try object.value("meta", meta)
        try object.encodable("errors", errors)
        try object.value("result", result)
        object.integer("max_attempts", maxAttempts)
        object.date("run_at", runAt)
        object.date("enqueued_at", enqueuedAt)
        object.date("reserved_at", reservedAt)
        object.date("lease_expires_at", leaseExpiresAt)
        object.date("finished_at", finishedAt)
        object.integer("timeout_ms", timeoutMs)
        object.date("expires_at", expiresAt)
        object.string("unique_key", uniqueKey)
        object.date("cancel_requested_at", cancelRequestedAt)
    }
}

extension ReservedJob: DirectJSONWritable {
    public func writeJSON(into object: inout JSONObjectWriter) throws(JSONWriteError) {
        object.string("id", id)
        object.string("type", type)
        try object.value("args", args)
        object.string("queue", queue)
        object.integer("priority", priority)
        object.integer("attempt", attempt)
        try object.value("meta", meta)
        try object.object("operation", operation)
        try object.object("package", package)
        object.integer("max_attempts", maxAttempts)
        object.date("enqueued_at", enqueuedAt)
        object.date("lease_expires_at", leaseExpiresAt)
    }
}

extension StepContext: DirectJSONWritable {
    public func writeJSON(into object: inout JSONObjectWriter) throws(JSONWriteError) {
        object.string("id", id)
        object.string("name", name)
        object.string("branch", branch)
        object.string("step", step)
        object.integer("index", index)
        try object.value("globals", globals)
    }
}

extension PackageContext: DirectJSONWritable {
    public func writeJSON(into object: inout JSONObjectWriter) throws(JSONWriteError) {
        object.string("name", name)
        try object.value("config", config)
    }
}

extension Reserve.Result: DirectJSONWritable {
    public func writeJSON(into object: inout JSONObjectWriter) throws(JSONWriteError) {
        try object.objects("jobs", jobs)
    }
}

extension Enqueue.Result: DirectJSONWritable {
    public func writeJSON(into object: inout JSONObjectWriter) throws(JSONWriteError) {
        object.string("id", id)
        object.string("state", state.rawValue)
        object.bool("duplicate", duplicate)
    }
}

extension Ack.Result: DirectJSONWritable {
    public func writeJSON(into object: inout JSONObjectWriter) throws(JSONWriteError) {
        object.bool("ok", ok)
        object.strings("acked", acked)
        try object.encodable("lost", lost)
        object.bool("cancel_requested", cancelRequested)
        object.strings("cancel_requested_ids", cancelRequestedIDs)
    }
}
