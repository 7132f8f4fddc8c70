/// One versioned schema change, embedded in the binary so a deployed `gantryd` needs no files beside it.
/// Versions only ever grow; a released migration is never edited, only followed by a new one.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let statements: [String]

    /// Every migration, in order. Append new ones here.
    public static let all: [Migration] = [.v0001, .v0002, .v0003, .v0004, .v0005, .v0006, .v0007, .v0008, .v0009, .v0010, .v0011, .v0012, .v0013, .v0014, .v0015, .v0016, .v0017]
}
