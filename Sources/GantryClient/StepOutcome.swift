import GantryProtocol

/// What a step of an operation says when it is done: values to merge into the operation's globals, where the
/// operation goes next instead of the branch's next step, and the job's result.
public struct StepOutcome: Sendable, Hashable {
    public var `set`: JSONObject?
    public var jumpTo: JumpTarget?
    public var result: JSONValue?

    public init(set: JSONObject? = nil, jumpTo: JumpTarget? = nil, result: JSONValue? = nil) {
        self.set = set
        self.jumpTo = jumpTo
        self.result = result
    }

    /// Goes to the first step of `branch`.
    public static func jump(to branch: String, set: JSONObject? = nil) -> StepOutcome {
        StepOutcome(set: `set`, jumpTo: JumpTarget(branch: branch))
    }

    var movesOperation: Bool { self.set != nil || jumpTo != nil }
}
