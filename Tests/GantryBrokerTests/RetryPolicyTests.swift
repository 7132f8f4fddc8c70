@testable import GantryBroker
import GantryProtocol
import GantryTesting
import Testing

@Suite(.deadline(.seconds(60))) struct RetryPolicyTests {
    let noJitter = RetryPolicy(random: { $0.lowerBound })
    let fullJitter = RetryPolicy(random: { $0.upperBound })

    @Test func retriesWhileAttemptsRemain() {
        #expect(noJitter.decide(attempt: 1, maxAttempts: 3, retryRequested: true, retryInMs: nil) == .retry(afterMs: 16_000))
        #expect(noJitter.decide(attempt: 2, maxAttempts: 3, retryRequested: true, retryInMs: nil) == .retry(afterMs: 31_000))
        #expect(noJitter.decide(attempt: 3, maxAttempts: 3, retryRequested: true, retryInMs: nil) == .dead)
    }

    @Test func retryFalseIsDeadAtOnce() {
        #expect(noJitter.decide(attempt: 1, maxAttempts: 25, retryRequested: false, retryInMs: nil) == .dead)
    }

    @Test func theWorkersDelayWins() {
        #expect(noJitter.decide(attempt: 4, maxAttempts: 25, retryRequested: true, retryInMs: 250) == .retry(afterMs: 250))
    }

    @Test func backoffGrowsAndJitterIsBounded() {
        var previous: Int64 = 0
        for attempt in 1...25 {
            let low = noJitter.backoffMs(attempt: attempt)
            let high = fullJitter.backoffMs(attempt: attempt)
            #expect(low > previous)
            #expect(high - low == Int64(10 * (attempt + 1)) * 1000)
            previous = low
        }
    }
}
