/// Who is long-polling `reserve` for which queues, and whom to wake when jobs appear. Pure state: the broker
/// keeps the continuations and acts on what these methods return.
///
/// A waiter registers *before* it tries to claim, so a job that arrives between its empty claim and its
/// parking still wakes it (`park` then returns `.resumeNow`). Wakes go first-come first-served, one waiter per
/// job announced, so a burst of one job does not stampede every idle worker into the database.
public struct Waitlist: Sendable {
    public typealias Ticket = UInt64

    public enum ParkDecision: Equatable, Sendable {
        case resumeNow
        case suspend
    }

    private var nextTicket: Ticket = 0
    private var queuesByTicket: [Ticket: [String]] = [:]
    private var ticketsByQueue: [String: [Ticket]] = [:]
    private var parked: Set<Ticket> = []
    private var woken: Set<Ticket> = []

    public init() {}

    public var count: Int { queuesByTicket.count }

    /// The queues someone is waiting on right now.
    public var waitedQueues: [String] { ticketsByQueue.filter { !$0.value.isEmpty }.map(\.key) }

    public mutating func register(queues: [String]) -> Ticket {
        nextTicket += 1
        queuesByTicket[nextTicket] = queues
        for queue in queues { ticketsByQueue[queue, default: []].append(nextTicket) }
        return nextTicket
    }

    /// The waiter found nothing and is about to sleep.
    public mutating func park(_ ticket: Ticket) -> ParkDecision {
        guard queuesByTicket[ticket] != nil, !woken.contains(ticket) else { return .resumeNow }
        parked.insert(ticket)
        return .suspend
    }

    /// `count` jobs became available in `queue`: returns the parked tickets to resume now. Waiters that are
    /// registered but not parked (busy claiming) are marked, so their next `park` returns at once.
    public mutating func jobsAvailable(queue: String, count: Int) -> [Ticket] {
        guard count > 0, var waiting = ticketsByQueue[queue], !waiting.isEmpty else { return [] }
        var toResume: [Ticket] = []
        var wokenHere = 0
        while wokenHere < count, !waiting.isEmpty {
            let ticket = waiting.removeFirst()
            guard !woken.contains(ticket) else { continue }
            woken.insert(ticket)
            wokenHere += 1
            if parked.remove(ticket) != nil { toResume.append(ticket) }
        }
        ticketsByQueue[queue] = waiting
        return toResume
    }

    /// Wakes every waiter (shutdown, or the notification channel was lost and nobody knows what was missed).
    public mutating func wakeAll() -> [Ticket] {
        woken.formUnion(queuesByTicket.keys)
        let toResume = Array(parked)
        parked.removeAll()
        return toResume.sorted()
    }

    /// The waiter is done (it claimed, timed out, or went away).
    public mutating func remove(_ ticket: Ticket) {
        guard let queues = queuesByTicket.removeValue(forKey: ticket) else { return }
        for queue in queues {
            ticketsByQueue[queue]?.removeAll { $0 == ticket }
            if ticketsByQueue[queue]?.isEmpty == true { ticketsByQueue[queue] = nil }
        }
        parked.remove(ticket)
        woken.remove(ticket)
    }

    public func isParked(_ ticket: Ticket) -> Bool { parked.contains(ticket) }
}
