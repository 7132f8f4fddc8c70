import Foundation

// The hot methods' params read straight from the request's fields (`KnownFields.fastDecode`), without Codable's
// walk (a container per field, a dynamic cast per value): an `enqueue_batch` of 1,000 jobs spent most of its
// broker time there. The fast reader takes only what is plainly right (each field of its exact JSON type) and
// otherwise answers nil, so the general path decides, and words any error. `LineReaderChecks` and the seeded
// fuzz tests hold both paths to the same params.

extension Enqueue.Params {
    public static func fastDecode(_ fields: JSONObject) -> Self? {
        guard case .string(let type)? = fields["type"] else { return nil }
        var params = Self(type: type)
        for (key, value) in fields where value != .null {
            switch key {
            case "type": continue
            case "args": params.args = value
            case "meta": params.meta = value
            case "queue":
                guard case .string(let queue) = value else { return nil }
                params.queue = queue
            case "unique_key":
                guard case .string(let uniqueKey) = value else { return nil }
                params.uniqueKey = uniqueKey
            case "priority":
                guard let number = integer(value).flatMap(Int.init(exactly:)) else { return nil }
                params.priority = number
            case "max_attempts":
                guard let number = integer(value).flatMap(Int.init(exactly:)) else { return nil }
                params.maxAttempts = number
            case "delay_ms": guard let number = integer(value) else { return nil }; params.delayMs = number
            case "timeout_ms": guard let number = integer(value) else { return nil }; params.timeoutMs = number
            case "queue_timeout_ms": guard let number = integer(value) else { return nil }; params.queueTimeoutMs = number
            case "unique_for_ms": guard let number = integer(value) else { return nil }; params.uniqueForMs = number
            case "run_at": guard let date = timestamp(value) else { return nil }; params.runAt = date
            case "expires_at": guard let date = timestamp(value) else { return nil }; params.expiresAt = date
            case "tags":
                guard case .array(let elements) = value else { return nil }
                var tags: [String] = []
                tags.reserveCapacity(elements.count)
                for element in elements {
                    guard case .string(let tag) = element else { return nil }
                    tags.append(tag)
                }
                params.tags = tags
            default:
                return nil
            }
        }
        return params
    }

    /// Only a plain JSON integer: `5.0`, `"5"` and the rest go the general way.
    private static func integer(_ value: JSONValue) -> Int64? {
        guard case .int(let number) = value else { return nil }
        return number
    }

    private static func timestamp(_ value: JSONValue) -> Date? {
        guard case .string(let text) = value else { return nil }
        return GantryJSON.parseTimestamp(text)
    }
}

extension EnqueueBatch.Params {
    public static func fastDecode(_ fields: JSONObject) -> Self? {
        guard fields.count == 1, case .array(let elements)? = fields["jobs"] else { return nil }
        var jobs: [Enqueue.Params] = []
        jobs.reserveCapacity(elements.count)
        for element in elements {
            guard case .object(let jobFields) = element, let job = Enqueue.Params.fastDecode(jobFields) else { return nil }
            jobs.append(job)
        }
        return Self(jobs: jobs)
    }
}
