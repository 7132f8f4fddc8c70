import Foundation
import GantryProtocol
import Synchronization

/// Reserves waiting on the same queues share claims: one coalescer per list of queues.
final class ClaimCoalescers: Sendable {
    private let byQueues = Mutex<[[String]: Coalescer<JobStore.ClaimRequest, [ReservedJob]>]>([:])
    private let store: JobStore
    private let defaultLeaseMs: Int64

    init(store: JobStore, defaultLeaseMs: Int64) {
        self.store = store
        self.defaultLeaseMs = defaultLeaseMs
    }

    func claim(queues: [String], _ request: JobStore.ClaimRequest) async throws -> [ReservedJob] {
        let (store, defaultLeaseMs) = (store, defaultLeaseMs)
        let coalescer = byQueues.withLock { coalescers in
            if let existing = coalescers[queues] { return existing }
            // A fleet with thousands of different queue lists starts over rather than growing without end;
            // claims in flight keep the coalescer they hold.
            if coalescers.count >= 1000 { coalescers.removeAll() }
            let made = Coalescer<JobStore.ClaimRequest, [ReservedJob]> {
                try await store.claimJobsTogether(queues: queues, requests: $0, defaultLeaseMs: defaultLeaseMs)
            }
            coalescers[queues] = made
            return made
        }
        return try await coalescer.submit(request)
    }
}
