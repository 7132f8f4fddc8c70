import GantryProtocol
import GantryTesting
import Testing

@Suite(.deadline(.seconds(60))) struct BackoffTests {
    @Test func pausesDoubleUpToTheCeilingAndStartOverAfterASuccess() {
        var backoff = Backoff(maximum: .milliseconds(500))
        #expect((0..<5).map { _ in backoff.next() } == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(500), .milliseconds(500)])
        backoff.reset()
        #expect(backoff.next() == .milliseconds(100))
        var fixed = Backoff(initial: .seconds(2), maximum: .seconds(2))
        #expect([fixed.next(), fixed.next()] == [.seconds(2), .seconds(2)])
    }
}
