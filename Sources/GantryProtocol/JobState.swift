/// Where a job is in its life. Live states are kept in the hot table; final ones in the history. The
/// transitions (the store's statements are the only code that makes them):
///
///     enqueue ─▶ scheduled ─(run_at)─▶ available ─reserve─▶ reserved ─ack─▶ completed
///     reserved ─nack, lease ran out, connection or broker lost─▶ scheduled/available (attempts left) or dead
///     reserved ─(same, after jobs.cancel)─▶ cancelled        scheduled/available ─jobs.cancel─▶ cancelled
///     scheduled/available ─(queue timeout)─▶ expired          dead/cancelled/expired ─jobs.retry─▶ available
public enum JobState: String, Codable, Sendable, CaseIterable {
    /// Waiting for its `run_at` (a delayed job, or a retry waiting out its backoff).
    case scheduled
    /// Ready to be reserved by a worker.
    case available
    /// Leased to one session until it acks, nacks, extends, drops, or the lease runs out.
    case reserved
    /// Acknowledged by a worker.
    case completed
    /// Failed with no attempts left, or nacked with `retry: false`. An operator may retry it.
    case dead
    /// Cancelled by an operator: at once while it waited; while it ran, when that attempt failed (nacked,
    /// its lease ran out, its connection closed). Such a job is never retried; one acked instead is `completed`.
    case cancelled
    /// Its queue timeout passed while it was still waiting to run.
    case expired

    public var isFinal: Bool {
        switch self {
        case .scheduled, .available, .reserved: false
        case .completed, .dead, .cancelled, .expired: true
        }
    }
}
