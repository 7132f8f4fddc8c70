import GantryProtocol

/// What a watching connection hears: the events it named, in the queues it named (every queue when none).
struct WatchFilter: Sendable, Equatable {
    var events: Set<String>
    var queues: Set<String>?

    /// Events without a queue (a worker lost) reach every watcher of their kind.
    func matches(event: String, queue: String?) -> Bool {
        guard events.contains(event) else { return false }
        guard let queues, let queue else { return true }
        return queues.contains(queue)
    }
}
