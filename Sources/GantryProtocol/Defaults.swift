/// Protocol-level defaults and bounds, the same for every broker and client.
public enum ProtocolDefaults {
    public static let protocolVersion = 1
    public static let port = 7440
    public static let maxLineBytes = 1 << 20
    public static let queue = "default"
    public static let priority = 16383
    public static let priorityRange = 1...32767
    public static let maxAttempts = 25
    public static let maxAttemptsRange = 1...10_000
    public static let reserveMaxRange = 1...1000
    public static let maxBatchJobs = 10_000
    public static let maxUniqueForMs: Int64 = 31_536_000_000
    /// Ten years: the longest delay, queue timeout or lease a job may ask for (longer ones overflow the
    /// database's date arithmetic).
    public static let maxDurationMs: Int64 = 315_360_000_000
}
