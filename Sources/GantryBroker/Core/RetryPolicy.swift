/// Decides what a failed attempt leads to: another attempt after a backoff, or the dead set.
public struct RetryPolicy: Sendable {
    /// How a failed attempt ends.
    public enum Decision: Equatable, Sendable {
        case retry(afterMs: Int64)
        case dead
    }

    public var random: @Sendable (ClosedRange<Int64>) -> Int64

    public init(random: @escaping @Sendable (ClosedRange<Int64>) -> Int64 = { Int64.random(in: $0) }) {
        self.random = random
    }

    public func decide(attempt: Int, maxAttempts: Int, retryRequested: Bool, retryInMs: Int64?) -> Decision {
        guard retryRequested, attempt < maxAttempts else { return .dead }
        return .retry(afterMs: retryInMs ?? backoffMs(attempt: attempt))
    }

    /// Sidekiq's curve, which users of job queues know: attempt⁴ + 15 s, plus up to 10 × (attempt + 1) s of
    /// jitter so jobs that failed together do not retry together. 25 attempts span about three weeks.
    public func backoffMs(attempt: Int) -> Int64 {
        let n = Int64(max(1, min(attempt, 1000)))
        let base = min(n * n * n * n, 10_000_000) + 15
        let jitter = random(0...(10 * (n + 1)) * 1000)
        return base * 1000 + jitter
    }
}
