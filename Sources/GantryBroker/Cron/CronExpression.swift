import Foundation

/// A cron expression: five fields (minute, hour, day of month, month, day of week), six with seconds first, or a
/// shortcut such as `@hourly`. Fields take `*`, numbers, names (`jan`, `mon`), ranges, lists and steps (`*/15`,
/// `1-30/2`, `5/10`). As in Vixie cron, when both day fields are restricted a day matches either of them.
public struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    public let description: String
    let seconds: CronField
    let minutes: CronField
    let hours: CronField
    let daysOfMonth: CronField
    let months: CronField
    let daysOfWeek: CronField
    /// Both day fields were given as something other than `*`: a day matches if either matches.
    let eitherDayMatches: Bool

    static let shortcuts: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    public init(_ text: String) throws(CronSyntaxError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        description = trimmed
        var expanded = trimmed
        if trimmed.hasPrefix("@") {
            guard let fields = Self.shortcuts[trimmed.lowercased()] else {
                throw CronSyntaxError(expression: trimmed, problem: "unknown shortcut \(trimmed); use one of \(Self.shortcuts.keys.sorted().joined(separator: ", "))")
            }
            expanded = fields
        }
        var fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 || fields.count == 6 else {
            throw CronSyntaxError(expression: trimmed, problem: "it has \(fields.count) fields; give 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)")
        }
        if fields.count == 5 { fields.insert("0", at: 0) }
        func parse(_ index: Int, _ kind: CronField.Kind) throws(CronSyntaxError) -> CronField {
            do { return try CronField(fields[index], kind: kind) } catch {
                throw CronSyntaxError(expression: trimmed, problem: "the \(kind.name) field \"\(fields[index])\": \(error.problem)")
            }
        }
        seconds = try parse(0, .second)
        minutes = try parse(1, .minute)
        hours = try parse(2, .hour)
        daysOfMonth = try parse(3, .dayOfMonth)
        months = try parse(4, .month)
        daysOfWeek = try parse(5, .dayOfWeek)
        eitherDayMatches = !fields[3].hasPrefix("*") && !fields[3].hasPrefix("?")
            && !fields[5].hasPrefix("*") && !fields[5].hasPrefix("?")
    }

    func matches(day: CivilDay) -> Bool {
        guard months.contains(day.month) else { return false }
        let dayOfMonth = daysOfMonth.contains(day.day)
        let dayOfWeek = daysOfWeek.contains(day.weekday)
        return eitherDayMatches ? (dayOfMonth || dayOfWeek) : (dayOfMonth && dayOfWeek)
    }

    /// The first moment strictly after `after` at which the expression fires, read on the wall clock of
    /// `timeZone`. A wall-clock time that a daylight-saving change skips fires when the gap ends. In the hour a
    /// change repeats, a schedule for given hours fires once (the first time), while one for every hour fires in
    /// both passes, so `*/10 * * * *` keeps its rhythm (as Vixie cron does). Nil when no date in the next eight
    /// years matches (`0 0 30 2 *`).
    public func nextFire(after: Date, in timeZone: TimeZone) -> Date? {
        let clock = WallClock(timeZone: timeZone)
        let floor = Int64(after.timeIntervalSince1970.rounded(.down))
        // No wall time up to `floor` plus the smallest offset nearby can show an instant after `floor`.
        let nearbyOffsets = [floor - 43200, floor, floor + 43200].map(clock.offset(at:))
        let earliestWall = floor + nearbyOffsets.min()! + 1
        var day = CivilDay(daysSinceEpoch: earliestWall.floorDivided(by: 86400))
        let everyHour = hours.values.count == 24
        var best: Int64?
        for _ in 0..<(8 * 366) {
            defer { day = day.next }
            guard matches(day: day) else { continue }
            let dayStart = day.daysSinceEpoch * 86400
            if dayStart + 86399 < earliestWall { continue }
            for hour in hours.values {
                let hourStart = dayStart + Int64(hour) * 3600
                if hourStart + 3599 < earliestWall { continue }
                for minute in minutes.values {
                    let minuteStart = hourStart + Int64(minute) * 60
                    if minuteStart + 59 < earliestWall { continue }
                    for second in seconds.values {
                        let wall = minuteStart + Int64(second)
                        if wall < earliestWall { continue }
                        let instants = clock.instants(atWallSeconds: wall)
                        // Later wall times only map to later instants than this one's first.
                        if let best, instants[0] >= best { return Date(timeIntervalSince1970: TimeInterval(best)) }
                        for instant in instants.prefix(everyHour ? 2 : 1) where instant > floor {
                            best = Swift.min(best ?? instant, instant)
                        }
                    }
                }
            }
        }
        return best.map { Date(timeIntervalSince1970: TimeInterval($0)) }
    }
}

public struct CronSyntaxError: Error, Equatable, CustomStringConvertible {
    public let expression: String
    public let problem: String
    public var description: String { "the cron expression \"\(expression)\" is not valid: \(problem)" }
}

/// The allowed values of one field, as a bit set.
struct CronField: Sendable, Equatable {
    enum Kind {
        case second, minute, hour, dayOfMonth, month, dayOfWeek

        var name: String {
            switch self {
            case .second: "second"
            case .minute: "minute"
            case .hour: "hour"
            case .dayOfMonth: "day-of-month"
            case .month: "month"
            case .dayOfWeek: "day-of-week"
            }
        }

        /// Day of week accepts 7 for Sunday, as most crons do.
        var range: ClosedRange<Int> {
            switch self {
            case .second, .minute: 0...59
            case .hour: 0...23
            case .dayOfMonth: 1...31
            case .month: 1...12
            case .dayOfWeek: 0...7
            }
        }

        var names: [String] {
            switch self {
            case .month: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
            case .dayOfWeek: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
            default: []
            }
        }

        /// The value of the first name (`jan` is 1, `sun` is 0).
        var firstNameValue: Int { self == .month ? 1 : 0 }
    }

    struct Problem: Error { let problem: String }

    private(set) var bits: UInt64 = 0
    /// Ascending, for the search.
    let values: [Int]

    init(_ text: String, kind: Kind) throws(Problem) {
        var bits: UInt64 = 0
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            bits |= try Self.parsePart(String(part), kind: kind)
        }
        if kind == .dayOfWeek, bits & (1 << 7) != 0 { bits = (bits | 1) & ~(1 << 7) }
        self.bits = bits
        values = (0..<64).filter { bits & (1 << UInt64($0)) != 0 }
    }

    func contains(_ value: Int) -> Bool { bits & (1 << UInt64(value)) != 0 }

    private static func parsePart(_ part: String, kind: Kind) throws(Problem) -> UInt64 {
        guard !part.isEmpty else { throw Problem(problem: "an empty list item") }
        let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count <= 2 else { throw Problem(problem: "more than one / in \"\(part)\"") }
        var step = 1
        if pieces.count == 2 {
            guard let given = Int(pieces[1]), given > 0 else {
                throw Problem(problem: "the step \"\(pieces[1])\" must be a whole number above 0")
            }
            step = given
        }
        let base = String(pieces[0])
        var bounds: ClosedRange<Int>
        if base == "*" || base == "?" {
            guard base == "*" || kind == .dayOfMonth || kind == .dayOfWeek else {
                throw Problem(problem: "? is only for the day fields; use *")
            }
            bounds = kind == .dayOfWeek ? 0...6 : kind.range
        } else if let dash = base.firstIndex(of: "-") {
            let low = try value(String(base[..<dash]), kind: kind)
            let high = try value(String(base[base.index(after: dash)...]), kind: kind)
            guard low <= high else { throw Problem(problem: "the range \(base) runs backwards; write the smaller value first") }
            bounds = low...high
        } else {
            let start = try value(base, kind: kind)
            // `5/10` means from 5 to the end in steps of 10; a lone `5` is just 5.
            bounds = pieces.count == 2 ? start...kind.range.upperBound : start...start
        }
        var bits: UInt64 = 0
        for value in stride(from: bounds.lowerBound, through: bounds.upperBound, by: step) { bits |= 1 << UInt64(value) }
        return bits
    }

    private static func value(_ text: String, kind: Kind) throws(Problem) -> Int {
        if let index = kind.names.firstIndex(of: text.lowercased()) { return index + kind.firstNameValue }
        guard let number = Int(text) else {
            let hint = kind.names.isEmpty ? "" : " or a name such as \(kind.names[0])"
            throw Problem(problem: "\"\(text)\" is not a number\(hint)")
        }
        guard kind.range.contains(number) else {
            throw Problem(problem: "\(number) is outside \(kind.range.lowerBound)–\(kind.range.upperBound)")
        }
        return number
    }
}

/// A date on the proleptic Gregorian calendar, counted in days from 1970-01-01.
struct CivilDay: Equatable {
    let daysSinceEpoch: Int64
    let year: Int
    let month: Int
    let day: Int

    init(daysSinceEpoch: Int64) {
        self.daysSinceEpoch = daysSinceEpoch
        // Days to civil date, counting in 400-year eras that start on March 1st.
        let shifted = daysSinceEpoch + 719_468
        let era = shifted.floorDivided(by: 146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        day = Int(dayOfYear - (153 * monthFromMarch + 2) / 5 + 1)
        month = Int(monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9)
        year = Int(yearOfEra + era * 400 + (month <= 2 ? 1 : 0))
    }

    /// 0 is Sunday; 1970-01-01 was a Thursday.
    var weekday: Int { Int((daysSinceEpoch + 4).floorModulo(by: 7)) }
    var next: CivilDay { CivilDay(daysSinceEpoch: daysSinceEpoch + 1) }
}

/// Converts between instants and a time zone's wall clock, both in whole seconds since 1970.
struct WallClock {
    let timeZone: TimeZone

    func offset(at instant: Int64) -> Int64 {
        Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant))))
    }

    /// The instants showing this wall time, earliest first: one, two in the hour a clock change repeats, or, for
    /// a time the change skipped, the instant the clock changed. Assumes at most one change within twelve hours,
    /// true of every real zone.
    func instants(atWallSeconds wall: Int64) -> [Int64] {
        let before = offset(at: wall - 43200)
        let after = offset(at: wall + 43200)
        let candidates = [wall - max(before, after), wall - min(before, after)]
        let valid = Array(Set(candidates.filter { offset(at: $0) == wall - $0 })).sorted()
        if !valid.isEmpty { return valid }
        // Skipped: the change lies between the two candidates; find its first second.
        var low = candidates[0]
        var high = candidates[1]
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if offset(at: middle) == before { low = middle } else { high = middle }
        }
        return [high]
    }
}

extension Int64 {
    func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }

    func floorModulo(by divisor: Int64) -> Int64 { self - floorDivided(by: divisor) * divisor }
}
