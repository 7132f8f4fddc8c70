/// Pauses between retries that double after each failure up to a ceiling, and start over after a success: one
/// rule for the broker's LISTEN reconnects and put-back retries and the client's reconnects and resends.
public struct Backoff: Sendable, Hashable {
    public let initial: Duration
    public let maximum: Duration
    /// The pause `next()` will give.
    public private(set) var upcoming: Duration

    public init(initial: Duration = .milliseconds(100), maximum: Duration) {
        self.initial = initial
        self.maximum = max(initial, maximum)
        upcoming = initial
    }

    /// The pause before the next attempt; the one after it is twice as long, up to `maximum`.
    public mutating func next() -> Duration {
        defer { upcoming = min(upcoming * 2, maximum) }
        return upcoming
    }

    /// After a success: the next failure waits `initial` again.
    public mutating func reset() {
        upcoming = initial
    }
}
