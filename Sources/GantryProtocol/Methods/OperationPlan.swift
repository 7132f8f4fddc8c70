import Foundation

/// One step of an operation: a job type and how its job is enqueued. In `operations.start` a step is written as
/// a bare type (`"charge.card"`) or as an object; the broker stores it with every default filled in.
public struct OperationStep: Codable, Sendable, Hashable {
    public var type: String
    public var queue: String
    public var priority: Int
    public var maxAttempts: Int
    public var timeoutMs: Int64?
    /// The step job's args; a step usually reads the operation's globals instead.
    public var args: JSONValue

    public init(type: String, queue: String, priority: Int = ProtocolDefaults.priority,
                maxAttempts: Int = ProtocolDefaults.maxAttempts, timeoutMs: Int64? = nil, args: JSONValue = [:]) {
        self.type = type
        self.queue = queue
        self.priority = priority
        self.maxAttempts = maxAttempts
        self.timeoutMs = timeoutMs
        self.args = args
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case type, queue, priority, args
        case maxAttempts = "max_attempts"
        case timeoutMs = "timeout_ms"
    }
}

/// One place in a branch: a step, or a group of steps that run at once (the next place starts when all of them
/// completed).
public enum OperationEntry: Codable, Sendable, Hashable {
    case step(OperationStep)
    case parallel([OperationStep])

    public var steps: [OperationStep] {
        switch self {
        case .step(let step): [step]
        case .parallel(let steps): steps
        }
    }

    public init(from decoder: any Decoder) throws {
        if let group = try? decoder.container(keyedBy: GroupKey.self), group.contains(.parallel) {
            self = .parallel(try group.decode([OperationStep].self, forKey: .parallel))
        } else {
            self = .step(try OperationStep(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .step(let step): try step.encode(to: encoder)
        case .parallel(let steps):
            var group = encoder.container(keyedBy: GroupKey.self)
            try group.encode(steps, forKey: .parallel)
        }
    }

    private enum GroupKey: String, CodingKey { case parallel }
}

/// An operation's branches as `operations.start` gives them, checked and with defaults filled in. `main` is where
/// it starts; a step's `jump_to` sends it to another branch.
public struct OperationPlan: Sendable, Hashable {
    public static let mainBranch = "main"
    /// The most steps one operation may list, over all its branches.
    public static let maxSteps = 1000
    public static let maxBranches = 100
    public static let maxParallel = 100
    public static let maxBranchNameLength = 64

    public var branches: OrderedDictionary<String, [OperationEntry]>

    public init(branches: OrderedDictionary<String, [OperationEntry]>) { self.branches = branches }

    /// Every queue its steps go to, sorted.
    public var queues: [String] { Set(branches.values.flatMap { $0.flatMap(\.steps).map(\.queue) }).sorted() }

    /// Checks `value` (the `branches` param) and fills in each step's defaults, `queue` first of all.
    public static func parse(_ value: JSONValue, defaultQueue: String, field: String = "branches") throws(RPCErrorObject) -> OperationPlan {
        guard let object = value.objectValue else {
            throw .invalidParams(field: field, "must be an object of branches, like {\"main\": [\"charge.card\", \"send.receipt\"]}, got \(value.typeName)")
        }
        guard object[mainBranch] != nil else {
            throw .invalidParams(field: "\(field).main", "is required: the operation starts at the first step of branch main")
        }
        guard object.count <= maxBranches else {
            throw .invalidParams(field: field, "holds \(object.count) branches; at most \(maxBranches)")
        }
        var branches: OrderedDictionary<String, [OperationEntry]> = [:]
        var total = 0
        for (name, listed) in object {
            try checkBranchName(name, field: "\(field).\(name)")
            branches[name] = try parseBranch(listed, defaultQueue: defaultQueue, field: "\(field).\(name)", total: &total)
        }
        return OperationPlan(branches: branches)
    }

    /// One branch's list of steps (a package's `steps` too); `total` counts steps over every branch parsed.
    public static func parseBranch(_ listed: JSONValue, defaultQueue: String, field path: String, total: inout Int) throws(RPCErrorObject) -> [OperationEntry] {
        guard let entries = listed.arrayValue else {
            throw .invalidParams(field: path, "must be an array of steps, got \(listed.typeName)")
        }
        guard !entries.isEmpty else { throw .invalidParams(field: path, "is empty; a branch needs at least one step") }
        var parsed: [OperationEntry] = []
        for (index, entry) in entries.enumerated() {
            let entryPath = "\(path)[\(index)]"
            if let group = entry.objectValue, let members = group["parallel"] {
                guard group.count == 1 else {
                    throw .invalidParams(field: entryPath, "a parallel group holds only \"parallel\": [steps]; put step options on its steps")
                }
                guard let list = members.arrayValue, !list.isEmpty, list.count <= maxParallel else {
                    throw .invalidParams(field: "\(entryPath).parallel", "must be an array of 1 to \(maxParallel) steps")
                }
                var steps: [OperationStep] = []
                for (member, step) in list.enumerated() {
                    steps.append(try parseStep(step, defaultQueue: defaultQueue, field: "\(entryPath).parallel[\(member)]"))
                }
                total += steps.count
                parsed.append(.parallel(steps))
            } else {
                total += 1
                parsed.append(.step(try parseStep(entry, defaultQueue: defaultQueue, field: entryPath)))
            }
            guard total <= maxSteps else {
                throw .invalidParams(field: entryPath, "is past the limit: an operation lists at most \(maxSteps) steps over all its branches")
            }
        }
        return parsed
    }

    static func parseStep(_ value: JSONValue, defaultQueue: String, field: String) throws(RPCErrorObject) -> OperationStep {
        switch value {
        case .string(let type):
            try Names.checkType(type, field: field)
            return OperationStep(type: type, queue: defaultQueue)
        case .object(let fields):
            if let unknown = fields.keys.first(where: { !OperationStep.fieldNames.contains($0) }) {
                let known = OperationStep.fieldNames.sorted().joined(separator: ", ")
                throw .invalidParams(field: "\(field).\(unknown)", "is not a step field; a step takes \(known)")
            }
            guard let type = fields["type"]?.stringValue else {
                throw .invalidParams(field: "\(field).type", "is required: the job type the step runs")
            }
            try Names.checkType(type, field: "\(field).type")
            var step = OperationStep(type: type, queue: defaultQueue)
            if let queue = fields["queue"] {
                guard let name = queue.stringValue else { throw .invalidParams(field: "\(field).queue", "must be a string") }
                try Names.checkQueue(name, field: "\(field).queue")
                step.queue = name
            }
            if let priority = fields["priority"] {
                guard let number = priority.intValue, ProtocolDefaults.priorityRange.contains(Int(number)) else {
                    throw .invalidParams(field: "\(field).priority", "must be a whole number between 1 (most urgent) and 32767")
                }
                step.priority = Int(number)
            }
            if let attempts = fields["max_attempts"] {
                guard let number = attempts.intValue, ProtocolDefaults.maxAttemptsRange.contains(Int(number)) else {
                    throw .invalidParams(field: "\(field).max_attempts", "must be a whole number between 1 and 10000")
                }
                step.maxAttempts = Int(number)
            }
            if let timeout = fields["timeout_ms"], timeout != .null {
                guard let number = timeout.intValue, (1000...ProtocolDefaults.maxDurationMs).contains(number) else {
                    throw .invalidParams(field: "\(field).timeout_ms", "must be a whole number of milliseconds, at least 1000")
                }
                step.timeoutMs = number
            }
            if let args = fields["args"] {
                if let (path, problem) = args.unstorable("\(field).args") { throw .invalidParams(field: path, problem) }
                step.args = args
            }
            return step
        default:
            throw .invalidParams(field: field, "must be a job type (\"charge.card\"), a step object ({\"type\": …}) or a parallel group ({\"parallel\": [steps]}), got \(value.typeName)")
        }
    }

    public static func checkBranchName(_ name: String, field: String) throws(RPCErrorObject) {
        guard !name.isEmpty, name.utf8.count <= maxBranchNameLength,
              name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.:".unicodeScalars.contains($0)) })
        else {
            throw .invalidParams(field: field, "branch names are 1 to \(maxBranchNameLength) characters of letters, digits, '_', '-', '.' or ':'")
        }
    }

    /// Where `jump_to` leads: the index of the named step in the branch (the first entry running that type),
    /// or of its first step. Throws naming the field when the branch or step is not in the plan.
    public func target(of jump: JumpTarget, operationID: String, field: String = "jump_to") throws(RPCErrorObject) -> (branch: String, index: Int) {
        guard let entries = branches[jump.branch] else {
            let known = branches.keys.joined(separator: ", ")
            throw .invalidParams(field: jump.step == nil ? field : "\(field).branch",
                                 "operation \(operationID) has no branch \"\(jump.branch)\" (its branches: \(known))")
        }
        guard let type = jump.step else { return (jump.branch, 0) }
        guard let index = entries.firstIndex(where: { $0.steps.contains { $0.type == type } }) else {
            let known = entries.flatMap(\.steps).map(\.type).joined(separator: ", ")
            throw .invalidParams(field: "\(field).step", "branch \(jump.branch) of operation \(operationID) has no step \"\(type)\" (its steps: \(known))")
        }
        return (jump.branch, index)
    }
}

extension [OperationEntry] {
    /// The places as people read them: `report.fetch › (report.mail + report.archive)`.
    public var summary: String {
        map { entry in
            switch entry {
            case .step(let step): step.type
            case .parallel(let steps): "(" + steps.map(\.type).joined(separator: " + ") + ")"
            }
        }.joined(separator: " › ")
    }
}

extension OperationStep {
    static let fieldNames: Set<String> = Set(CodingKeys.allCases.map(\.rawValue))
}

extension OperationPlan: Codable {
    public init(from decoder: any Decoder) throws {
        // Through JSONValue, which keeps the members' order (an OrderedDictionary decodes from an array).
        guard let object = try JSONValue(from: decoder).objectValue else {
            throw DecodingError.typeMismatch(JSONObject.self, .init(codingPath: decoder.codingPath, debugDescription: "branches must be an object"))
        }
        branches = try OrderedDictionary(uniqueKeysWithValues: object.map { name, value in
            (name, try JSONValueDecoder.decode([OperationEntry].self, from: value))
        })
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: BranchKey.self)
        for (name, entries) in branches { try container.encode(entries, forKey: BranchKey(stringValue: name)) }
    }

    private struct BranchKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// Where a step's `jump_to` sends the operation: a branch (its first step), or a named step of a branch. On the
/// wire `"refund"` or `{"branch": "refund", "step": "refund.issue"}`.
public struct JumpTarget: Codable, Sendable, Hashable {
    public var branch: String
    public var step: String?

    public init(branch: String, step: String? = nil) {
        self.branch = branch
        self.step = step
    }

    public init(from decoder: any Decoder) throws {
        if let branch = try? decoder.singleValueContainer().decode(String.self) {
            self.init(branch: branch)
            return
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(branch: try c.decode(String.self, forKey: .branch), step: try c.decodeIfPresent(String.self, forKey: .step))
    }

    public func encode(to encoder: any Encoder) throws {
        if step == nil {
            var single = encoder.singleValueContainer()
            try single.encode(branch)
        } else {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(branch, forKey: .branch)
            try c.encodeIfPresent(step, forKey: .step)
        }
    }

    enum CodingKeys: String, CodingKey { case branch, step }
}
