import Foundation

/// A JSON Schema (a subset of draft 2020-12), checked and compiled once, then used to validate any number of values.
///
/// Supported: boolean schemas, `type`, `enum`, `const`, `properties`, `required`, `additionalProperties`, `items`
/// (one schema for every element), `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`,
/// `minLength`, `maxLength` (in Unicode code points), `minItems`, `maxItems` and `pattern` (an unanchored search,
/// in `NSRegularExpression`'s dialect, which is close to ECMA-262's). The annotations `title`, `description`,
/// `default`, `examples`, `format` (not checked), `$schema`, `$id` and `$comment` are accepted. Every other keyword
/// is ignored, as the spec says of unknown ones, except `$ref`, `$dynamicRef` and the other standard keywords that
/// constrain values (`allOf`, `patternProperties`, `uniqueItems`, ...), which are refused so that a schema leaning on
/// them fails where it is given rather than accepting args it was written to refuse. Numbers are compared exactly, whatever
/// their spelling or size (`1e999`, `2.50`, integers beyond 64 bits).
public struct JSONSchema: Sendable, Hashable {
    /// Standard keywords that constrain values and that this validator does not check.
    static let unsupportedConstraints = [
        "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "patternProperties", "propertyNames", "dependentRequired",
        "dependentSchemas", "dependencies", "prefixItems", "contains", "minContains", "maxContains", "uniqueItems",
        "minProperties", "maxProperties", "unevaluatedProperties", "unevaluatedItems",
    ]
    static let supportedKeywords = "type, enum, const, properties, required, additionalProperties, items, minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf, minLength, maxLength, minItems, maxItems, pattern"

    /// The schema as given.
    public let value: JSONValue
    private let root: SchemaNode

    /// Checks and compiles `schema`; a problem is reported with its place inside the schema, starting at `path`
    /// (`args_schema.properties.amount.minimum: must be a number, got a string`).
    public init(_ schema: JSONValue, path: String = "args_schema") throws(SchemaProblem) {
        value = schema
        root = try SchemaNode(schema, path: path)
    }

    /// The first violations (at most `limit`, and at least one when there are any), in document order: a value's own
    /// checks, then its elements or members in the order they come, then the members its object lacks. Empty when
    /// `instance` matches. Paths start at `root` (`args.items[2].name`).
    public func violations(of instance: JSONValue, at root: String = "args", limit: Int = 10) -> [SchemaViolation] {
        var run = ValidationRun(root: root, limit: max(1, limit))
        self.root.check(instance, in: &run, falseRule: "false")
        return run.violations
    }

    public static func == (lhs: JSONSchema, rhs: JSONSchema) -> Bool { lhs.value == rhs.value }
    public func hash(into hasher: inout Hasher) { hasher.combine(value) }
}

/// Where a value breaks a schema, and which keyword says so.
public struct SchemaViolation: Sendable, Hashable, CustomStringConvertible {
    /// `args.amount`, `args.items[2].name`, `args["odd name"]`; the root alone for the value itself.
    public var path: String
    /// The keyword broken: `type`, `minimum`, `required`, ... (`false` for a schema that is `false` itself).
    public var rule: String
    /// What a person reads: `must be >= 0`, `is required`, `must be an integer, got a string`.
    public var message: String

    public init(path: String, rule: String, message: String) {
        self.path = path
        self.rule = rule
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

/// What is wrong with a schema, and where inside it (`args_schema.properties.amount.minimum`).
public struct SchemaProblem: Error, Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

// MARK: - Paths

enum SchemaPaths {
    /// `path.name` for a name like an identifier, otherwise `path["the name"]` in JSON's string escaping.
    static func member(_ name: String, of path: String) -> String {
        isIdentifier(name) ? path + "." + name : path + "[" + quoted(name) + "]"
    }

    /// A member's name as a message shows it: bare when it is like an identifier, otherwise quoted.
    static func name(_ name: String) -> String { isIdentifier(name) ? name : quoted(name) }

    static func quoted(_ text: String) -> String {
        var bytes: [UInt8] = []
        JSONWriter.writeString(text, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func isIdentifier(_ name: String) -> Bool {
        var first = true
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "_"): break
            case UInt8(ascii: "0")...UInt8(ascii: "9") where !first: break
            default: return false
            }
            first = false
        }
        return !first
    }
}

// MARK: - Validation

/// One validation's state: the path to where it is, kept as steps and only spelled out for a violation.
struct ValidationRun {
    enum Step {
        case member(String)
        case index(Int)
    }

    let root: String
    let limit: Int
    var violations: [SchemaViolation] = []
    var steps: [Step] = []

    init(root: String, limit: Int) {
        self.root = root
        self.limit = limit
    }

    var isFull: Bool { violations.count >= limit }

    mutating func report(_ rule: String, _ message: String) {
        var path = root
        for step in steps {
            switch step {
            case .member(let name): path = SchemaPaths.member(name, of: path)
            case .index(let index): path += "[\(index)]"
            }
        }
        violations.append(SchemaViolation(path: path, rule: rule, message: message))
    }
}

/// The JSON types `type` can name.
struct SchemaTypes: OptionSet, Sendable {
    let rawValue: UInt8

    static let null = SchemaTypes(rawValue: 1 << 0)
    static let boolean = SchemaTypes(rawValue: 1 << 1)
    static let object = SchemaTypes(rawValue: 1 << 2)
    static let array = SchemaTypes(rawValue: 1 << 3)
    static let number = SchemaTypes(rawValue: 1 << 4)
    static let integer = SchemaTypes(rawValue: 1 << 5)
    static let string = SchemaTypes(rawValue: 1 << 6)

    /// In the order a message lists them, with the words it uses.
    static let named: [(name: String, type: SchemaTypes, words: String)] = [
        ("object", .object, "an object"), ("array", .array, "an array"), ("string", .string, "a string"),
        ("integer", .integer, "an integer"), ("number", .number, "a number"), ("boolean", .boolean, "a boolean"),
        ("null", .null, "null"),
    ]

    func matches(_ value: JSONValue) -> Bool {
        switch value {
        case .null: contains(.null)
        case .bool: contains(.boolean)
        case .object: contains(.object)
        case .array: contains(.array)
        case .string: contains(.string)
        case .int: contains(.number) || contains(.integer)
        case .double, .number:
            contains(.number) || (contains(.integer) && SchemaNumber(value)?.isInteger == true)
        }
    }
}

/// A number bound from the schema (`minimum` and its kin), with the test it puts a value to.
struct NumberBound: Sendable {
    let rule: String
    let limit: SchemaNumber
    /// The comparisons of value against limit that pass: -1, 0, 1.
    let passes: Set<Int>
    let message: String
}

/// A compiled `pattern`. `NSRegularExpression` is immutable and documented as safe to use from any thread (not every
/// platform's Foundation says it is Sendable).
struct SchemaPattern: @unchecked Sendable {
    let source: String
    let regex: NSRegularExpression
    /// The longest one string's search may take. ICU's matcher backtracks, and some patterns (`^(a|a)*$`) take
    /// exponential time on some strings: past this the search stops and the string is refused, so no enqueue can
    /// hold a thread for long.
    static let budget: TimeInterval = 0.05

    enum Outcome { case matched, unmatched, tooSlow }

    func search(_ text: String) -> Outcome {
        let started = Date()
        var outcome = Outcome.unmatched
        // With reportProgress the block is also called while the search runs (match nil), so it can stop it.
        regex.enumerateMatches(in: text, options: [.reportProgress], range: NSRange(location: 0, length: text.utf16.count)) { match, _, stop in
            if match != nil {
                outcome = .matched
                stop.pointee = true
            } else if Date().timeIntervalSince(started) > Self.budget {
                outcome = .tooSlow
                stop.pointee = true
            }
        }
        return outcome
    }
}

/// One schema, compiled: what its keywords ask of a value, ready to check without looking at the JSON again.
final class SchemaNode: Sendable {
    /// `true`: no checks. `false`: nothing passes.
    let rejectsAll: Bool
    let types: SchemaTypes?
    let typeWords: String
    let enumValues: [JSONValue]?
    let enumMessage: String
    let constValue: JSONValue?
    let constMessage: String
    let bounds: [NumberBound]
    let multipleOf: SchemaNumber?
    let multipleOfMessage: String
    let minLength: Int?
    let maxLength: Int?
    let pattern: SchemaPattern?
    let minItems: Int?
    let maxItems: Int?
    let items: SchemaNode?
    let properties: [String: SchemaNode]
    let required: [String]
    let additionalProperties: SchemaNode?
    let additionalMessage: String
    /// Whether there is anything to check in an object's members.
    let checksMembers: Bool
    /// A schema that lets everything through (`true`, `{}`), so members or elements under it need no visit.
    let acceptsAll: Bool

    init(_ schema: JSONValue, path: String) throws(SchemaProblem) {
        let keywords: JSONObject
        switch schema {
        case .bool(let accepts):
            keywords = [:]
            rejectsAll = !accepts
        case .object(let members):
            keywords = members
            rejectsAll = false
        default:
            throw SchemaProblem(path: path, message: "must be a schema (an object or a boolean), got \(schema.typeName)")
        }
        func at(_ keyword: String) -> String { SchemaPaths.member(keyword, of: path) }
        func problem(_ keyword: String, _ message: String) -> SchemaProblem { SchemaProblem(path: at(keyword), message: message) }

        for keyword in ["$ref", "$dynamicRef"] where keywords[keyword] != nil {
            throw problem(keyword, "\(keyword) is not supported; write the schema it refers to in its place")
        }
        for keyword in JSONSchema.unsupportedConstraints where keywords[keyword] != nil {
            throw problem(keyword, "\(keyword) is not a keyword Gantry checks, so args breaking it would pass; supported: \(JSONSchema.supportedKeywords)")
        }
        for keyword in ["title", "description", "$comment", "$id", "$schema", "format"] {
            if let value = keywords[keyword], value.stringValue == nil {
                throw problem(keyword, "must be a string, got \(value.typeName)")
            }
        }
        if let value = keywords["examples"], value.arrayValue == nil {
            throw problem("examples", "must be an array, got \(value.typeName)")
        }

        // type
        if let value = keywords["type"] {
            func named(_ name: JSONValue, _ place: String) throws(SchemaProblem) -> SchemaTypes {
                guard let text = name.stringValue else {
                    throw SchemaProblem(path: place, message: "must be a type name (a string), got \(name.typeName)")
                }
                guard let type = SchemaTypes.named.first(where: { $0.name == text })?.type else {
                    let known = SchemaTypes.named.map(\.name).joined(separator: ", ")
                    throw SchemaProblem(path: place, message: "\(SchemaPaths.quoted(text)) is not a JSON type (the types are \(known))")
                }
                return type
            }
            var types: SchemaTypes = []
            if case .array(let names) = value {
                guard !names.isEmpty else { throw problem("type", "must name at least one type") }
                for (index, name) in names.enumerated() {
                    let type = try named(name, at("type") + "[\(index)]")
                    guard !types.contains(type) else {
                        throw SchemaProblem(path: at("type") + "[\(index)]", message: "names \(name.stringValue!) twice")
                    }
                    types.insert(type)
                }
            } else if case .string = value {
                types = try named(value, at("type"))
            } else {
                throw problem("type", "must be a type name or an array of them, got \(value.typeName)")
            }
            self.types = types
            // "integer" said alongside "number" adds nothing to say.
            let said = SchemaTypes.named.filter { types.contains($0.type) && !($0.type == .integer && types.contains(.number)) }
            typeWords = Self.list(said.map(\.words), or: true)
        } else {
            types = nil
            typeWords = ""
        }

        // enum, const
        if let value = keywords["enum"] {
            guard case .array(let values) = value else { throw problem("enum", "must be an array, got \(value.typeName)") }
            enumValues = values
            enumMessage = values.isEmpty ? "matches no value (the enum is empty)" : "must be one of " + Self.listed(values)
        } else {
            enumValues = nil
            enumMessage = ""
        }
        constValue = keywords["const"]
        constMessage = keywords["const"].map { "must equal " + Self.spelled($0) } ?? ""

        // numbers
        func number(_ keyword: String) throws(SchemaProblem) -> (number: SchemaNumber, spelled: String)? {
            guard let value = keywords[keyword] else { return nil }
            guard let number = SchemaNumber(value) else { throw problem(keyword, "must be a number, got \(value.typeName)") }
            return (number, Self.spelled(value))
        }
        var bounds: [NumberBound] = []
        let kinds: [(keyword: String, passes: Set<Int>, words: String)] = [
            ("minimum", [0, 1], ">="), ("maximum", [-1, 0], "<="), ("exclusiveMinimum", [1], ">"), ("exclusiveMaximum", [-1], "<"),
        ]
        for (keyword, passes, words) in kinds {
            if let (limit, spelled) = try number(keyword) {
                bounds.append(NumberBound(rule: keyword, limit: limit, passes: passes, message: "must be \(words) \(spelled)"))
            }
        }
        self.bounds = bounds
        if let (step, spelled) = try number("multipleOf") {
            guard SchemaNumber.compare(step, .int(0)) == 1 else { throw problem("multipleOf", "must be greater than 0") }
            multipleOf = step
            multipleOfMessage = "must be a multiple of \(spelled)"
        } else {
            multipleOf = nil
            multipleOfMessage = ""
        }

        // counts
        func count(_ keyword: String) throws(SchemaProblem) -> Int? {
            guard let value = keywords[keyword] else { return nil }
            guard let number = SchemaNumber(value), number.isInteger, SchemaNumber.compare(number, .int(0)) != -1 else {
                throw problem(keyword, "must be a non-negative integer, got \(Self.spelled(value, orType: true))")
            }
            // A whole number beyond Int64: no string or array is that long.
            return number.int64Value.map { Int($0) } ?? Int.max
        }
        minLength = try count("minLength")
        maxLength = try count("maxLength")
        minItems = try count("minItems")
        maxItems = try count("maxItems")

        // pattern
        if let value = keywords["pattern"] {
            guard let source = value.stringValue else { throw problem("pattern", "must be a string, got \(value.typeName)") }
            do {
                pattern = SchemaPattern(source: source, regex: try NSRegularExpression(pattern: source))
            } catch {
                throw problem("pattern", "is not a valid regular expression: \(SchemaPaths.quoted(source))")
            }
        } else {
            pattern = nil
        }

        // items
        if let value = keywords["items"] {
            if case .array = value {
                throw problem("items", "must be a schema (an object or a boolean); an array of schemas (draft 7's tuples) is not supported")
            }
            items = try SchemaNode(value, path: at("items"))
        } else {
            items = nil
        }

        // properties, required, additionalProperties
        var properties: [String: SchemaNode] = [:]
        if let value = keywords["properties"] {
            guard case .object(let members) = value else {
                throw problem("properties", "must be an object (of schemas by member name), got \(value.typeName)")
            }
            for (name, member) in members {
                properties[name] = try SchemaNode(member, path: SchemaPaths.member(name, of: at("properties")))
            }
            additionalMessage = members.isEmpty ? "is not allowed" : "is not allowed (the schema allows only " + Self.list(members.keys.map(SchemaPaths.name), or: false) + ")"
        } else {
            additionalMessage = "is not allowed"
        }
        self.properties = properties
        var required: [String] = []
        if let value = keywords["required"] {
            guard case .array(let names) = value else { throw problem("required", "must be an array of member names, got \(value.typeName)") }
            for (index, name) in names.enumerated() {
                guard let name = name.stringValue else {
                    throw SchemaProblem(path: at("required") + "[\(index)]", message: "must be a member name (a string), got \(name.typeName)")
                }
                guard !required.contains(name) else {
                    throw SchemaProblem(path: at("required") + "[\(index)]", message: "names \(SchemaPaths.quoted(name)) twice")
                }
                required.append(name)
            }
        }
        self.required = required
        if let value = keywords["additionalProperties"] {
            additionalProperties = try SchemaNode(value, path: at("additionalProperties"))
        } else {
            additionalProperties = nil
        }
        checksMembers = !properties.isEmpty || !required.isEmpty || additionalProperties != nil
        acceptsAll = !rejectsAll && types == nil && enumValues == nil && constValue == nil && bounds.isEmpty
            && multipleOf == nil && minLength == nil && maxLength == nil && pattern == nil && minItems == nil
            && maxItems == nil && items == nil && !checksMembers
    }

    /// Adds the ways `value` breaks this schema to `run`, stopping when it is full. `falseRule` is the keyword that
    /// brought this schema in, named when the schema is `false`.
    func check(_ value: JSONValue, in run: inout ValidationRun, falseRule: String) {
        if rejectsAll {
            run.report(falseRule, "is not allowed")
            return
        }
        if let types, !types.matches(value) {
            run.report("type", "must be \(typeWords), got \(Self.got(value, types: types))")
            if run.isFull { return }
        }
        if let enumValues, !enumValues.contains(where: { Self.same($0, value) }) {
            run.report("enum", enumMessage)
            if run.isFull { return }
        }
        if let constValue, !Self.same(constValue, value) {
            run.report("const", constMessage)
            if run.isFull { return }
        }
        switch value {
        case .int, .double, .number:
            guard !bounds.isEmpty || multipleOf != nil else { return }
            // A `.number` whose text is no number is only made by hand, never read: it passes what it can't be put to.
            guard let number = SchemaNumber(value) else { return }
            for bound in bounds {
                if let order = SchemaNumber.compare(number, bound.limit), bound.passes.contains(order) { continue }
                run.report(bound.rule, bound.message)
                if run.isFull { return }
            }
            if let multipleOf, !number.isMultiple(of: multipleOf) {
                run.report("multipleOf", multipleOfMessage)
            }
        case .string(let text):
            if minLength != nil || maxLength != nil {
                let length = text.unicodeScalars.count
                if let minLength, length < minLength {
                    run.report("minLength", "must be at least \(Self.counted(minLength, "character")) long, got \(length)")
                    if run.isFull { return }
                }
                if let maxLength, length > maxLength {
                    run.report("maxLength", "must be at most \(Self.counted(maxLength, "character")) long, got \(length)")
                    if run.isFull { return }
                }
            }
            if let pattern {
                switch pattern.search(text) {
                case .matched: break
                case .unmatched: run.report("pattern", "must match the pattern \(SchemaPaths.quoted(pattern.source))")
                case .tooSlow:
                    run.report("pattern", "could not be checked against the pattern \(SchemaPaths.quoted(pattern.source)) in \(Int(SchemaPattern.budget * 1000)) ms (the pattern backtracks too much on this string; simplify the pattern)")
                }
            }
        case .array(let elements):
            if let minItems, elements.count < minItems {
                run.report("minItems", "must have at least \(Self.counted(minItems, "item")), got \(elements.count)")
                if run.isFull { return }
            }
            if let maxItems, elements.count > maxItems {
                run.report("maxItems", "must have at most \(Self.counted(maxItems, "item")), got \(elements.count)")
                if run.isFull { return }
            }
            if let items, !items.acceptsAll {
                for (index, element) in elements.enumerated() {
                    run.steps.append(.index(index))
                    items.check(element, in: &run, falseRule: "items")
                    run.steps.removeLast()
                    if run.isFull { return }
                }
            }
        case .object(let members):
            guard checksMembers else { return }
            for (name, member) in members {
                guard let schema = properties[name] ?? additionalProperties, !schema.acceptsAll else { continue }
                run.steps.append(.member(name))
                if properties[name] != nil {
                    schema.check(member, in: &run, falseRule: "properties")
                } else if schema.rejectsAll {
                    run.report("additionalProperties", additionalMessage)
                } else {
                    schema.check(member, in: &run, falseRule: "additionalProperties")
                }
                run.steps.removeLast()
                if run.isFull { return }
            }
            for name in required where members[name] == nil {
                run.steps.append(.member(name))
                run.report("required", "is required")
                run.steps.removeLast()
                if run.isFull { return }
            }
        case .null, .bool:
            break
        }
    }

    // MARK: helpers

    /// JSON equality as the spec has it: numbers by value (`1 == 1.0`), objects whatever their members' order.
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.int(let x), .int(let y)):
            return x == y
        case (.int, _), (.double, _), (.number, _):
            guard let x = SchemaNumber(a), let y = SchemaNumber(b) else { return false }
            return SchemaNumber.compare(x, y) == 0
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.allSatisfy { name, value in y[name].map { same(value, $0) } ?? false }
        default:
            return a == b
        }
    }

    /// What a value is, for a `type` message: its type, or the number itself when only its fraction is wrong.
    static func got(_ value: JSONValue, types: SchemaTypes) -> String {
        switch value {
        case .double, .number: types.contains(.integer) ? spelled(value) : value.typeName
        default: value.typeName
        }
    }

    /// A value as JSON text, cut short when long.
    static func spelled(_ value: JSONValue, orType: Bool = false) -> String {
        switch value {
        case .int(let number): return String(number)
        case .double(let number): return number.description
        case .number(let text): return text
        case .array, .object, .string, .bool, .null:
            if orType, value.arrayValue != nil || value.objectValue != nil { return value.typeName }
            guard let text = try? JSONWriter.string(value) else { return value.typeName }
            return text.count > 80 ? text.prefix(77) + "..." : text
        }
    }

    /// Enum values for a message: `1, 2 or "three"`, at most a dozen or so.
    private static func listed(_ values: [JSONValue]) -> String {
        let shown = values.prefix(12).map { spelled($0) }
        return values.count > shown.count ? shown.joined(separator: ", ") + ", ... (\(values.count) values)" : list(shown, or: true)
    }

    /// `a`, `a or b`, `a, b or c` (`and` for `or: false`), shortened after a dozen.
    static func list(_ words: [String], or: Bool) -> String {
        guard words.count > 1 else { return words.first ?? "" }
        if words.count > 12 { return words.prefix(12).joined(separator: ", ") + ", ..." }
        return words.dropLast().joined(separator: ", ") + (or ? " or " : " and ") + words.last!
    }

    static func counted(_ count: Int, _ noun: String) -> String {
        count == 1 ? "1 \(noun)" : "\(count) \(noun)s"
    }
}
