import Foundation
@testable import GantryBroker
import GantryTesting
import Testing

@Suite(.deadline(.seconds(60))) struct CronExpressionTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let expression: String
        let zone: String
        let after: String
        let expected: String?
        var testDescription: String { "\(expression) in \(zone) after \(after)" }
    }

    static func instant(_ text: String) -> Date {
        let parser = ISO8601DateFormatter()
        if text.contains(".") { parser.formatOptions.insert(.withFractionalSeconds) }
        return parser.date(from: text)!
    }

    static let cases: [Case] = [
        Case(expression: "*/15 * * * *", zone: "UTC", after: "2026-03-01T10:07:30Z", expected: "2026-03-01T10:15:00Z"),
        Case(expression: "0 9 * * mon-fri", zone: "UTC", after: "2026-12-04T09:00:00Z", expected: "2026-12-07T09:00:00Z"),
        Case(expression: "0 0 1 jan,JUL *", zone: "UTC", after: "2026-02-10T00:00:00Z", expected: "2026-07-01T00:00:00Z"),
        // Both day fields restricted: the 1st, the 15th, or any Friday.
        Case(expression: "30 4 1,15 * 5", zone: "UTC", after: "2026-12-01T05:00:00Z", expected: "2026-12-04T04:30:00Z"),
        // One day field is *: both must match (Fridays that are the 1st or 15th... none soon; here any day 1 or 15).
        Case(expression: "30 4 1,15 * *", zone: "UTC", after: "2026-12-01T05:00:00Z", expected: "2026-12-15T04:30:00Z"),
        Case(expression: "0 0 29 2 *", zone: "UTC", after: "2026-03-01T00:00:00Z", expected: "2028-02-29T00:00:00Z"),
        Case(expression: "0 0 30 2 *", zone: "UTC", after: "2026-03-01T00:00:00Z", expected: nil),
        Case(expression: "*/10 * * * * *", zone: "UTC", after: "2026-12-01T10:00:05Z", expected: "2026-12-01T10:00:10Z"),
        Case(expression: "@hourly", zone: "UTC", after: "2026-12-01T10:00:00Z", expected: "2026-12-01T11:00:00Z"),
        Case(expression: "@weekly", zone: "UTC", after: "2026-12-01T10:00:00Z", expected: "2026-12-06T00:00:00Z"),
        Case(expression: "@yearly", zone: "UTC", after: "2026-12-01T10:00:00Z", expected: "2027-01-01T00:00:00Z"),
        Case(expression: "@monthly", zone: "UTC", after: "2026-12-01T00:00:00Z", expected: "2027-01-01T00:00:00Z"),
        Case(expression: "@daily", zone: "UTC", after: "2026-12-31T23:59:59Z", expected: "2027-01-01T00:00:00Z"),
        Case(expression: "0 12 * * 7", zone: "UTC", after: "2026-12-01T10:00:00Z", expected: "2026-12-06T12:00:00Z"),
        Case(expression: "5/20 * * * *", zone: "UTC", after: "2026-12-01T10:30:00Z", expected: "2026-12-01T10:45:00Z"),
        Case(expression: "0 8-18/4 * * *", zone: "UTC", after: "2026-12-01T13:00:00Z", expected: "2026-12-01T16:00:00Z"),
        Case(expression: "0 8-18/4 * * *", zone: "UTC", after: "2026-12-01T16:00:00Z", expected: "2026-12-02T08:00:00Z"),
        Case(expression: "15 10 * * ?", zone: "UTC", after: "2026-12-01T10:15:00.5Z", expected: "2026-12-02T10:15:00Z"),
        Case(expression: "0 9 * * *", zone: "America/New_York", after: "2026-12-01T00:00:00Z", expected: "2026-12-01T14:00:00Z"),
        // Spring forward in New York (02:00 EST → 03:00 EDT on 2026-03-08): 02:30 does not exist, so it runs at 03:00.
        Case(expression: "30 2 * * *", zone: "America/New_York", after: "2026-03-08T05:00:00Z", expected: "2026-03-08T07:00:00Z"),
        Case(expression: "30 2 * * *", zone: "America/New_York", after: "2026-03-08T07:00:00Z", expected: "2026-03-09T06:30:00Z"),
        // Fall back (02:00 EDT → 01:00 EST on 2026-11-01): 01:30 happens twice and runs once, the first time.
        Case(expression: "30 1 * * *", zone: "America/New_York", after: "2026-11-01T04:00:00Z", expected: "2026-11-01T05:30:00Z"),
        Case(expression: "30 1 * * *", zone: "America/New_York", after: "2026-11-01T05:30:00Z", expected: "2026-11-02T06:30:00Z"),
        // Every hour keeps running through the repeated hour (01:00 EDT, 01:00 EST, 02:00 EST); a given hour runs once.
        Case(expression: "0 * * * *", zone: "America/New_York", after: "2026-11-01T05:00:00Z", expected: "2026-11-01T06:00:00Z"),
        Case(expression: "0 * * * *", zone: "America/New_York", after: "2026-11-01T06:00:00Z", expected: "2026-11-01T07:00:00Z"),
        Case(expression: "0 1 * * *", zone: "America/New_York", after: "2026-11-01T05:00:00Z", expected: "2026-11-02T06:00:00Z"),
        Case(expression: "*/20 * * * *", zone: "America/New_York", after: "2026-11-01T05:50:00Z", expected: "2026-11-01T06:00:00Z"),
        // Berlin springs forward at 02:00 CET on 2026-03-29: 02:00 and 02:30 both land on 03:00 CEST, which runs once.
        Case(expression: "*/30 * * * *", zone: "Europe/Berlin", after: "2026-03-29T00:45:00Z", expected: "2026-03-29T01:00:00Z"),
        Case(expression: "*/30 * * * *", zone: "Europe/Berlin", after: "2026-03-29T01:00:00Z", expected: "2026-03-29T01:30:00Z"),
        Case(expression: "0 0 * * *", zone: "Asia/Kolkata", after: "2026-12-01T00:00:00Z", expected: "2026-12-01T18:30:00Z"),
    ]

    @Test(arguments: cases)
    func nextFire(_ example: Case) throws {
        let expression = try CronExpression(example.expression)
        let zone = try #require(TimeZone(identifier: example.zone))
        let fire = expression.nextFire(after: Self.instant(example.after), in: zone)
        #expect(fire == example.expected.map(Self.instant))
    }

    @Test(arguments: [
        ("61 * * * *", "the minute field \"61\": 61 is outside 0–59"),
        ("* * *", "it has 3 fields"),
        ("@fortnightly", "unknown shortcut @fortnightly"),
        ("*/0 * * * *", "the step \"0\" must be a whole number above 0"),
        ("5-1 * * * *", "the range 5-1 runs backwards"),
        ("* * * foo *", "\"foo\" is not a number or a name such as jan"),
        ("? * * * *", "? is only for the day fields"),
        ("1,,2 * * * *", "an empty list item"),
        ("L * * * *", "\"L\" is not a number"),
        ("0 24 * * *", "the hour field \"24\": 24 is outside 0–23"),
        ("* * * * 8", "8 is outside 0–7"),
    ])
    func syntaxErrorsSayWhatIsWrong(_ text: String, _ expected: String) {
        #expect {
            try CronExpression(text)
        } throws: { error in
            "\(error)".contains(expected) && "\(error)".contains("cron expression")
        }
    }

    @Test func everySecondNeitherRepeatsNorSkipsWhenTheClockFallsBack() throws {
        let expression = try CronExpression("* * * * * *")
        let zone = try #require(TimeZone(identifier: "Europe/Berlin"))
        var moment = Self.instant("2026-10-25T00:59:58Z")  // Berlin falls back at 01:00 UTC
        for _ in 0..<5 {
            let next = try #require(expression.nextFire(after: moment, in: zone))
            #expect(next.timeIntervalSince(moment) == 1)
            moment = next
        }
    }

    @Test func civilDaysRoundTrip() {
        #expect(CivilDay(daysSinceEpoch: 0).year == 1970)
        #expect(CivilDay(daysSinceEpoch: 0).weekday == 4)
        let leap = CivilDay(daysSinceEpoch: 11016)  // 2000-02-29
        #expect([leap.year, leap.month, leap.day] as [Int] == [2000, 2, 29])
        let before = CivilDay(daysSinceEpoch: -1)
        #expect([before.year, before.month, before.day, before.weekday] as [Int] == [1969, 12, 31, 3])
    }
}
