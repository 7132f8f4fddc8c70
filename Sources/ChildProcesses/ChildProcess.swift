import CSpawnExtras
import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process: started with posix_spawn, watched by asking `waitpid(pid, WNOHANG)` whether it has ended,
/// reaped exactly once by whoever asks first, and signalled only while it has not been reaped (so a signal
/// never reaches a stranger that reused its pid).
///
/// This is the one way Gantry starts programs (the embedded PostgreSQL's tools, gantry-worker's commands, the
/// test harness's brokers). Foundation's `Process` is not used anywhere: on Linux it decides a child has ended
/// when a socket the child inherited closes, which a daemon the child leaves behind keeps open for ever, and
/// its one monitor thread blocks in `wait4` on a still-running child while the others it should reap pile up
/// (the test suite once deadlocked that way). Nothing here ever blocks in a wait on a running child.
public final class ChildProcess: Sendable {
    /// Where the child's standard input comes from.
    public enum Input: Sendable {
        case null
        case file(String)
    }

    /// Where one of the child's standard outputs goes.
    public enum Output: Sendable {
        case null
        /// Created, or emptied.
        case file(String)
        /// Standard error only: wherever standard output goes.
        case standardOutput
    }

    /// How the child ended.
    public enum Termination: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        /// The shell's convention: the exit code, or 128 plus the signal.
        public var status: Int32 {
            switch self {
            case .exited(let code): code
            case .signalled(let signal): 128 + signal
            }
        }

        public var description: String {
            switch self {
            case .exited(let code): "exited with status \(code)"
            case .signalled(let signal): "killed by signal \(signal)"
            }
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let pid: pid_t
    public let executable: String
    /// Whether `signal` reaches the child's whole process group (it leads one of its own).
    public let leadsProcessGroup: Bool
    private let ending = Mutex<Termination?>(nil)

    /// Starts `executable` (a path; `/usr/bin/env` finds a name on the PATH) with `arguments`.
    /// - Parameters:
    ///   - environment: the child's whole environment; nil passes ours down.
    ///   - workingDirectory: where it starts; nil keeps ours.
    ///   - newProcessGroup: makes the child lead a process group of its own, so `signal` reaches everything it
    ///     starts too.
    /// The child inherits no descriptor of ours but the three given, and starts with every signal at its
    /// default and none blocked, whatever the parent ignores or blocks (NIO ignores SIGPIPE, for one).
    public init(
        executable: String, arguments: [String] = [], environment: [String: String]? = nil,
        workingDirectory: String? = nil, standardInput: Input = .null, standardOutput: Output = .null,
        standardError: Output = .null, newProcessGroup: Bool = false
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        switch standardInput {
        case .null: posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        case .file(let path): posix_spawn_file_actions_addopen(&actions, 0, path, O_RDONLY, 0)
        }
        for (descriptor, output) in [(Int32(1), standardOutput), (Int32(2), standardError)] {
            switch output {
            case .null: posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", O_WRONLY, 0)
            case .file(let path): posix_spawn_file_actions_addopen(&actions, descriptor, path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            case .standardOutput: posix_spawn_file_actions_adddup2(&actions, 1, descriptor)
            }
        }
        if gantry_spawn_add_closefrom(&actions, 3) != 0 { Self.stopDescriptorInheritance() }
        if let workingDirectory {
            let failed = gantry_spawn_add_chdir(&actions, workingDirectory)
            guard failed == 0 else {
                throw Failure(description: "could not start \(executable) in \(workingDirectory): \(String(cString: strerror(failed)))")
            }
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var everySignal = sigset_t()
        sigfillset(&everySignal)
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { variables in
            variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        }
        defer { for pointer in envp ?? [] { free(pointer) } }

        var pid: pid_t = 0
        let spawned = envp.map { posix_spawn(&pid, executable, &actions, &attributes, argv, $0) }
            ?? posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard spawned == 0 else {
            throw Failure(description: "could not start \(executable): \(String(cString: strerror(spawned)))")
        }
        self.pid = pid
        self.executable = executable
        self.leadsProcessGroup = newProcessGroup
    }

    /// How the child ended, or nil while it runs. Never blocks; the first call that sees the end reaps it.
    public func termination() -> Termination? {
        ending.withLock { ending in
            if let ending { return ending }
            var status: Int32 = 0
            var reaped: pid_t
            repeat { reaped = waitpid(pid, &status, WNOHANG) } while reaped == -1 && errno == EINTR
            if reaped == 0 { return nil }
            // -1 (ECHILD) means something else reaped it, which nothing in Gantry does; it has ended all the same.
            ending = reaped == pid ? Self.termination(fromWaitStatus: status) : .exited(-1)
            return ending
        }
    }

    public var isRunning: Bool { termination() == nil }

    /// Sends `signal` to the child (to its whole group if it leads one), unless it has already been reaped.
    public func signal(_ signal: Int32) {
        ending.withLock { ending in
            guard ending == nil else { return }
            _ = kill(leadsProcessGroup ? -pid : pid, signal)
        }
    }

    /// Waits for the child to end. Not cut short by task cancellation: to stop waiting sooner, signal the child.
    public func wait() async -> Termination {
        var pause = Self.firstPause
        while true {
            if let ending = termination() { return ending }
            await Self.sleepIgnoringCancellation(pause)
            pause = min(pause * 2, Self.longestPause)
        }
    }

    /// Waits up to `timeout` for the child to end; nil if it still runs then.
    public func wait(timeout: Duration) async -> Termination? {
        let deadline = ContinuousClock.now + timeout
        var pause = Self.firstPause
        while true {
            if let ending = termination() { return ending }
            let left = deadline - ContinuousClock.now
            if left <= .zero { return nil }
            await Self.sleepIgnoringCancellation(min(pause, left))
            pause = min(pause * 2, Self.longestPause)
        }
    }

    /// Waits for the child to end, blocking this thread between looks, for code that cannot await (an atexit
    /// handler). Prefer `wait()` anywhere else.
    public func waitBlocking(timeout: Duration? = nil) -> Termination? {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var pause = Self.firstPause
        while true {
            if let ending = termination() { return ending }
            if let deadline, ContinuousClock.now >= deadline { return nil }
            let (seconds, attoseconds) = pause.components
            usleep(UInt32(seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
            pause = min(pause * 2, Self.longestPause)
        }
    }

    /// Stops the child: SIGTERM, then SIGKILL if it has not ended within `grace`. Returns how it ended.
    @discardableResult
    public func stop(grace: Duration = .seconds(5)) async -> Termination {
        signal(SIGTERM)
        if let ending = await wait(timeout: grace) { return ending }
        signal(SIGKILL)
        return await wait()
    }

    // A child that ends within a few milliseconds (most commands) is seen at once; one that runs for long is
    // looked at 40 times a second, which costs nothing measurable.
    private static let firstPause = Duration.milliseconds(1)
    private static let longestPause = Duration.milliseconds(25)

    private static func sleepIgnoringCancellation(_ duration: Duration) async {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { continuation.resume() }
        }
    }

    static func termination(fromWaitStatus status: Int32) -> Termination {
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// Marks every descriptor above stderr close-on-exec, where the C library cannot close them in the child.
    static func stopDescriptorInheritance() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for descriptor in entries.compactMap(Int32.init) where descriptor > 2 {
            let flags = fcntl(descriptor, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(descriptor, F_SETFD, flags | FD_CLOEXEC) }
        }
    }
}
