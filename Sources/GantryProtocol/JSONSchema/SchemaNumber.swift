/// A JSON number as a schema check sees it: compared and divided exactly, whatever its spelling or size
/// (`1e999`, `100000000000000000000001`, `2.50`), never by rounding the text to a Double first.
enum SchemaNumber: Sendable {
    case int(Int64)
    case double(Double)
    /// A number beyond Int64 that Swift does not spell as written, kept as an exact decimal.
    case decimal(ExactDecimal)

    /// Nil for a value that is not a number, or a `.number` whose text is no number at all.
    init?(_ value: JSONValue) {
        switch value {
        case .int(let value): self = .int(value)
        case .double(let value): self = .double(value)
        case .number(let text):
            if let decimal = ExactDecimal(text) {
                if let whole = decimal.int64Value { self = .int(whole) } else { self = .decimal(decimal) }
            } else if let value = Double(text) {
                self = .double(value)
            } else {
                return nil
            }
        default: return nil
        }
    }

    /// Whether the number has no fractional part (`1`, `1.0`, `1e999`).
    var isInteger: Bool {
        switch self {
        case .int: true
        case .double(let value): value.isFinite && value.rounded(.towardZero) == value
        case .decimal(let decimal): decimal.isInteger
        }
    }

    /// The value when it is a whole number within Int64's range (`.decimal` is never one).
    var int64Value: Int64? {
        switch self {
        case .int(let value): value
        case .double(let value): Int64(exactly: value)
        case .decimal: nil
        }
    }

    /// The exact decimal for a finite number; a Double counts as the decimal Swift spells it with, which is the
    /// text it was read from.
    var decimal: ExactDecimal? {
        switch self {
        case .int(let value): ExactDecimal(String(value))
        case .double(let value): value.isFinite ? ExactDecimal(value.description) : nil
        case .decimal(let decimal): decimal
        }
    }

    /// How `lhs` compares with `rhs`: -1, 0 or 1; nil when either is NaN.
    static func compare(_ lhs: SchemaNumber, _ rhs: SchemaNumber) -> Int? {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)):
            return a < b ? -1 : a == b ? 0 : 1
        case (.double(let a), .double(let b)):
            if a.isNaN || b.isNaN { return nil }
            return a < b ? -1 : a == b ? 0 : 1
        case (.int(let a), .double(let b)):
            return compare(a, b)
        case (.double(let a), .int(let b)):
            return compare(b, a).map { -$0 }
        default:
            // A decimal on one side: an infinite Double is beyond every decimal, NaN is beyond comparing.
            for (side, sign) in [(lhs, 1), (rhs, -1)] {
                if case .double(let value) = side, !value.isFinite {
                    return value.isNaN ? nil : (value > 0 ? sign : -sign)
                }
            }
            guard let a = lhs.decimal, let b = rhs.decimal else { return nil }
            return ExactDecimal.compare(a, b)
        }
    }

    /// An Int64 against a Double, exactly (converting the Int64 to Double may round it).
    private static func compare(_ a: Int64, _ b: Double) -> Int? {
        if b.isNaN { return nil }
        if let whole = Int64(exactly: b) { return a < whole ? -1 : a == whole ? 0 : 1 }
        if b.rounded(.towardZero) != b {
            // A fraction is below 2^52 in size: a nearby Int64 converts exactly, a farther one stays farther.
            return Double(a) < b ? -1 : 1
        }
        // A whole Double outside Int64's range (or infinite) is beyond every Int64.
        return b > 0 ? -1 : 1
    }

    /// Whether `self` is a whole multiple of `divisor` (which is > 0), exactly.
    func isMultiple(of divisor: SchemaNumber) -> Bool {
        if case .int(let value) = self, case .int(let step) = divisor {
            return value.remainderReportingOverflow(dividingBy: step).partialValue == 0
        }
        guard let value = decimal, let step = divisor.decimal else { return false }
        if let answer = value.isMultiple(of: step) { return answer }
        // A divisor of more than 18 significant digits: the nearest Doubles have to do.
        let quotient = Self.double(value) / Self.double(step)
        return quotient.isFinite && quotient.rounded(.towardZero) == quotient
    }

    private static func double(_ decimal: ExactDecimal) -> Double { Double(decimal.description) ?? .nan }
}

/// A finite decimal number, exactly: `0.d1d2…dn × 10^exponent`, digits without leading or trailing zeros
/// (none at all for zero).
struct ExactDecimal: Sendable, Hashable, CustomStringConvertible {
    var negative: Bool
    var digits: [UInt8]
    var exponent: Int

    /// Exponents are held within this, so `1e99999999999999999999` neither overflows nor loops.
    private static let exponentLimit = 1 << 50

    /// Reads JSON's number grammar (`-12.5e+3`); also the Doubles' spellings (`1e-07`, `9.0e+15`). Nil otherwise.
    init?(_ text: String) {
        var bytes = text.utf8[...]
        negative = bytes.first == UInt8(ascii: "-")
        if negative { bytes = bytes.dropFirst() }
        var digits: [UInt8] = []
        var pointAt = 0
        var sawDigit = false
        while let byte = bytes.first, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
            digits.append(byte - UInt8(ascii: "0"))
            pointAt += 1
            sawDigit = true
            bytes = bytes.dropFirst()
        }
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            var sawFraction = false
            while let byte = bytes.first, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                digits.append(byte - UInt8(ascii: "0"))
                sawFraction = true
                bytes = bytes.dropFirst()
            }
            guard sawFraction else { return nil }
        }
        guard sawDigit else { return nil }
        var exponent = 0
        if let byte = bytes.first, byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            var exponentNegative = false
            if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                exponentNegative = sign == UInt8(ascii: "-")
                bytes = bytes.dropFirst()
            }
            var sawExponent = false
            while let byte = bytes.first, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                exponent = min(exponent * 10 + Int(byte - UInt8(ascii: "0")), Self.exponentLimit)
                sawExponent = true
                bytes = bytes.dropFirst()
            }
            guard sawExponent else { return nil }
            if exponentNegative { exponent = -exponent }
        }
        guard bytes.isEmpty else { return nil }
        // Leading zeros move the point left; trailing ones change nothing.
        let leading = digits.prefix { $0 == 0 }.count
        digits.removeFirst(leading)
        while digits.last == 0 { digits.removeLast() }
        if digits.isEmpty {
            self.negative = false
            self.digits = []
            self.exponent = 0
            return
        }
        self.digits = digits
        self.exponent = pointAt - leading + exponent
    }

    var isZero: Bool { digits.isEmpty }

    var isInteger: Bool { digits.count <= exponent }

    /// The value when it is a whole number within Int64's range.
    var int64Value: Int64? {
        guard isInteger, exponent <= 19 else { return nil }
        var magnitude: UInt64 = 0
        for position in 0..<exponent {
            let digit = position < digits.count ? UInt64(digits[position]) : 0
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(digit)
            if overflow1 || overflow2 { return nil }
            magnitude = sum
        }
        if negative {
            if magnitude == UInt64(Int64.max) + 1 { return .min }
            return magnitude <= UInt64(Int64.max) ? -Int64(magnitude) : nil
        }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    /// Scientific notation, e.g. `-0.125e3`, exact and readable by Double.
    var description: String {
        if isZero { return "0" }
        return (negative ? "-0." : "0.") + String(decoding: digits.map { $0 + UInt8(ascii: "0") }, as: UTF8.self) + "e\(exponent)"
    }

    static func compare(_ a: ExactDecimal, _ b: ExactDecimal) -> Int {
        let signA = a.isZero ? 0 : a.negative ? -1 : 1
        let signB = b.isZero ? 0 : b.negative ? -1 : 1
        if signA != signB { return signA < signB ? -1 : 1 }
        if signA == 0 { return 0 }
        let magnitude: Int
        if a.exponent != b.exponent {
            magnitude = a.exponent < b.exponent ? -1 : 1
        } else if let difference = zip(a.digits, b.digits).first(where: { $0 != $1 }) {
            magnitude = difference.0 < difference.1 ? -1 : 1
        } else {
            magnitude = a.digits.count < b.digits.count ? -1 : a.digits.count == b.digits.count ? 0 : 1
        }
        return signA * magnitude
    }

    /// Whether `self` is a whole multiple of `step`; nil when `step` has too many digits to say exactly here.
    ///
    /// With integer mantissas `X` and `M` (no trailing zeros), `self = X·10^a` and `step = M·10^b`. When
    /// `a < b` the quotient `X / (M·10^(b-a))` is never whole, as `X` is not a multiple of 10; otherwise it is
    /// whole when `M` divides `X·10^(a-b)`, worked out modulo `M`.
    func isMultiple(of step: ExactDecimal) -> Bool? {
        if isZero { return true }
        if step.isZero { return false }
        guard step.digits.count <= 18 else { return nil }
        let modulus = step.digits.reduce(UInt64(0)) { $0 * 10 + UInt64($1) }
        let shift = (exponent - digits.count) - (step.exponent - step.digits.count)
        if shift < 0 { return false }
        var remainder: UInt64 = 0
        for digit in digits { remainder = (remainder * 10 + UInt64(digit)) % modulus }
        return Self.multiply(remainder, Self.power(10, shift, modulus), modulus) == 0
    }

    private static func multiply(_ a: UInt64, _ b: UInt64, _ modulus: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return modulus.dividingFullWidth((product.high, product.low)).remainder
    }

    private static func power(_ base: UInt64, _ exponent: Int, _ modulus: UInt64) -> UInt64 {
        var result: UInt64 = 1 % modulus
        var base = base % modulus
        var exponent = exponent
        while exponent > 0 {
            if exponent & 1 == 1 { result = multiply(result, base, modulus) }
            base = multiply(base, base, modulus)
            exponent >>= 1
        }
        return result
    }
}
