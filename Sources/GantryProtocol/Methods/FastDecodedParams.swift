import Foundation

/// Params that the hot methods read straight from the request's fields, without Codable's walk (a container per
/// field, a dynamic cast per value): an `enqueue_batch` of 1,000 jobs spent most of its broker time there. The
/// fast reader takes only what is plainly right (each field of its exact JSON type) and otherwise answers nil,
/// so the general path decides, and words any error. `GantryJSON.decodeParams` tries it first; the fuzz checks
/// (`LineReaderChecks`) hold both paths to the same params.
public protocol FastDecodedParams {
    static func fastDecode(_ fields: JSONObject) -> Self?
}

extension Enqueue.Params: FastDecodedParams {
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
                guard case .int(let number) = value, let priority = Int(exactly: number) else { return nil }
                params.priority = priority
            case "max_attempts":
                guard case .int(let number) = value, let maxAttempts = Int(exactly: number) else { return nil }
                params.maxAttempts = maxAttempts
            case "delay_ms":
                guard case .int(let number) = value else { return nil }
                params.delayMs = number
            case "timeout_ms":
                guard case .int(let number) = value else { return nil }
                params.timeoutMs = number
            case "queue_timeout_ms":
                guard case .int(let number) = value else { return nil }
                params.queueTimeoutMs = number
            case "unique_for_ms":
                guard case .int(let number) = value else { return nil }
                params.uniqueForMs = number
            case "run_at":
                guard case .string(let text) = value, let date = GantryJSON.parseTimestamp(text) else { return nil }
                params.runAt = date
            case "expires_at":
                guard case .string(let text) = value, let date = GantryJSON.parseTimestamp(text) else { return nil }
                params.expiresAt = date
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
}

extension EnqueueBatch.Params: FastDecodedParams {
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
