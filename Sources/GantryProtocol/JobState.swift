/// Where a job is in its life. Live states are kept in the hot table; final ones in the history.
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
    /// Cancelled by an operator before it ran.
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
