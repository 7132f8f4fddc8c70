import Foundation

/// The step files of `--package-dir`: each file names the job type it runs by its name (`report.fetch.py` runs
/// steps of type `report.fetch`). Files directly in the folder serve every package; a subfolder named after a
/// package holds files that serve that package's steps first.
struct PackageDirectory: Sendable {
    enum Kind: String, Sendable {
        case python, sql, shell, executable
    }

    struct StepFile: Sendable, Equatable {
        let path: String
        let kind: Kind
    }

    let path: String
    let shared: [String: StepFile]
    let byPackage: [String: [String: StepFile]]

    struct Unreadable: Error, CustomStringConvertible {
        let description: String
    }

    static func scan(_ path: String) throws -> PackageDirectory {
        let manager = FileManager.default
        var isFolder: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
            throw Unreadable(description: "--package-dir \(path) is not a folder")
        }
        var byPackage: [String: [String: StepFile]] = [:]
        for name in try manager.contentsOfDirectory(atPath: path) where !name.hasPrefix(".") {
            let inner = (path as NSString).appendingPathComponent(name)
            var innerIsFolder: ObjCBool = false
            if manager.fileExists(atPath: inner, isDirectory: &innerIsFolder), innerIsFolder.boolValue {
                byPackage[name] = try files(in: inner)
            }
        }
        let directory = PackageDirectory(path: path, shared: try files(in: path), byPackage: byPackage)
        guard !directory.types.isEmpty else {
            throw Unreadable(description: "--package-dir \(path) holds no step files (*.py, *.sql, *.sh or executables)")
        }
        return directory
    }

    /// The step files directly in `folder`, by the job type each runs.
    private static func files(in folder: String) throws -> [String: StepFile] {
        let manager = FileManager.default
        var found: [String: StepFile] = [:]
        for name in try manager.contentsOfDirectory(atPath: folder).sorted() where !name.hasPrefix(".") {
            let file = (folder as NSString).appendingPathComponent(name)
            var isFolder: ObjCBool = false
            guard manager.fileExists(atPath: file, isDirectory: &isFolder), !isFolder.boolValue else { continue }
            let known: [(String, Kind)] = [(".py", .python), (".sql", .sql), (".sh", .shell)]
            if let (suffix, kind) = known.first(where: { name.hasSuffix($0.0) }) {
                found[String(name.dropLast(suffix.count))] = StepFile(path: file, kind: kind)
            } else if manager.isExecutableFile(atPath: file) {
                found[name] = StepFile(path: file, kind: .executable)
            }
        }
        return found
    }

    /// Every job type some file runs.
    var types: Set<String> {
        Set(shared.keys).union(byPackage.values.flatMap(\.keys))
    }

    /// The file for a step: the package's own folder first, then the shared files.
    func file(for type: String, package: String?) -> StepFile? {
        package.flatMap { byPackage[$0]?[type] } ?? shared[type]
    }
}
