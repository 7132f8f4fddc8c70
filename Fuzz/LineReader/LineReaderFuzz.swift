import CLibFuzzer
import Foundation
import LineReaderChecks

// A coverage-guided fuzz target for the broker's line reader and params decoding (the checks are in
// Sources/LineReaderChecks), built with libFuzzer by `scripts/fuzz.sh`. Built without `-DFUZZING` it replays the
// files or directories it is given, for CI and for reproducing a find.

@main
struct FuzzLines {
    static func main() throws {
        #if FUZZING
        var argc = CommandLine.argc
        var argv = Optional(CommandLine.unsafeArgv)
        exit(LLVMFuzzerRunDriver(&argc, &argv) { start, count in
            if let problem = LineReaderChecks.problem(with: start.map { Data(bytes: $0, count: count) } ?? Data()) {
                fatalError(problem)
            }
            return 0
        })
        #else
        var replayed = 0
        for path in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path])
            }
            let url = URL(fileURLWithPath: path)
            let files = isDirectory.boolValue ? try FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil) : [url]
            for file in files {
                if let problem = LineReaderChecks.problem(with: try Data(contentsOf: file)) { fatalError(problem) }
                replayed += 1
            }
        }
        print("replayed \(replayed) inputs: no crash, no disagreement")
        #endif
    }
}
