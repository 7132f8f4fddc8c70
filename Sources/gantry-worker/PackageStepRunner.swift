import ChildProcesses
import Foundation
import GantryProtocol

/// Runs a step from `--package-dir`: `*.py` with python3, `*.sh` with sh, `*.sql` with psql against `--sql-url`,
/// any other executable as it is. Each gets `{"package_name", "config", "globals", "args"}` as JSON on stdin and
/// as its first argument (psql as the variable `input`: `:'input'::jsonb ->> 'config'`).
struct PackageStepRunner: JobCommandRunner {
    let directory: PackageDirectory
    let sqlURL: String?
    let timeout: Duration
    let killGrace: Duration = .seconds(5)

    struct NoFile: Error, CustomStringConvertible {
        let description: String
    }

    func run(_ job: ReservedJob) async throws -> ChildProcess.Completed {
        guard let file = directory.file(for: job.type, package: job.package?.name) else {
            throw NoFile(description: "no file in \(directory.path) runs steps of type \(job.type): add \(job.type).py, .sql, .sh or an executable named \(job.type), then retry the operation")
        }
        let input: JSONValue = [
            "package_name": job.package.map { .string($0.name) } ?? .null, "config": job.package?.config ?? [:],
            "globals": job.operation?.globals ?? [:], "args": job.args,
        ]
        let text = String(decoding: try GantryJSON.makeEncoder().encode(input), as: UTF8.self)
        var environment = try CommandRunner.environment(for: job)
        if let package = job.package { environment["GANTRY_PACKAGE"] = package.name }
        let (executable, arguments): (String, [String])
        switch file.kind {
        case .python: (executable, arguments) = ("/usr/bin/env", ["python3", file.path, text])
        case .shell: (executable, arguments) = ("/bin/sh", [file.path, text])
        case .executable: (executable, arguments) = (file.path, [text])
        case .sql:
            guard let sqlURL else {
                throw NoFile(description: "\(file.path) is SQL, and this worker has no --sql-url to run it against: start it with --sql-url postgres://…, then retry the operation")
            }
            // -At: bare rows, so `SELECT json_build_object('set', …)` prints a line that steers the operation.
            (executable, arguments) = ("/usr/bin/env", [
                "psql", "--no-psqlrc", "--quiet", "-At", "-v", "ON_ERROR_STOP=1", "-v", "input=\(text)", "-d", sqlURL, "-f", file.path,
            ])
        }
        return try await ChildProcess.run(
            executable, arguments, environment: environment, workingDirectory: (file.path as NSString).deletingLastPathComponent,
            input: text + "\n", newProcessGroup: true, timeout: timeout, killGrace: killGrace)
    }
}
