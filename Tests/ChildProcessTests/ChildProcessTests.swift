import ChildProcesses
import Foundation
import GantryTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.deadline(.seconds(60))) struct ChildProcessTests {
    private func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("child-test-\(UUID().uuidString)-\(name)").path
    }

    private func isAlive(_ pid: pid_t) -> Bool {
        // A zombie still has /proc/PID; its state letter is Z.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        return !stat.contains(") Z ")
    }

    @Test func runReportsTheExitStatusAndWhatItPrinted() async throws {
        let completed = try await ChildProcess.run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        #expect(completed.termination == .exited(3))
        #expect(completed.output == "out\n")
        #expect(completed.errors == "err\n")
        let merged = try await ChildProcess.run("/bin/sh", ["-c", "echo one; echo two >&2"], mergeErrors: true)
        #expect(merged.output == "one\ntwo\n")
        #expect(merged.errors.isEmpty)
    }

    @Test func inputEnvironmentAndWorkingDirectoryReachTheChild() async throws {
        let completed = try await ChildProcess.run(
            "/bin/sh", ["-c", "read line; echo \"$line $GREETING $(pwd)\""], environment: ["GREETING": "hello", "PATH": "/usr/bin:/bin"],
            workingDirectory: "/tmp", input: "from stdin\n")
        #expect(completed.output == "from stdin hello /tmp\n")
        await #expect(throws: ChildProcess.Failure.self) {
            _ = try await ChildProcess.run("/bin/true", workingDirectory: "/no/such/directory")
        }
        #expect(throws: ChildProcess.Failure.self) { try ChildProcess(executable: "/no/such/program") }
    }

    @Test func aSignalIsReportedAsSuch() async throws {
        let completed = try await ChildProcess.run("/bin/sh", ["-c", "kill -KILL $$"])
        #expect(completed.termination == .signalled(SIGKILL))
        #expect(completed.status == 128 + SIGKILL)
    }

    @Test func aChildIsReapedOnceAndItsEndingRemembered() async throws {
        let child = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "exit 7"])
        #expect(await child.wait() == .exited(7))
        #expect(!isAlive(child.pid), "reaped: no zombie left")
        #expect(child.termination() == .exited(7))
        #expect(await child.wait(timeout: .seconds(1)) == .exited(7))
        #expect(child.waitBlocking() == .exited(7))
        child.signal(SIGKILL)  // reaped: nothing is signalled, whoever has the pid now
    }

    /// Foundation's `Process` waits for a socket the child inherited to close; a daemon the child leaves
    /// behind keeps it open, so the child seemed to run for ever (`pg_ctl start` does exactly this).
    @Test func aChildThatLeavesADaemonBehindHasEnded() async throws {
        let pidFile = temporaryPath("daemon")
        defer { unlink(pidFile) }
        let started = ContinuousClock.now
        let completed = try await ChildProcess.run("/bin/sh", ["-c", "sleep 30 & echo $! > \(pidFile); echo started"])
        #expect(completed.output == "started\n")
        #expect(ContinuousClock.now - started < .seconds(10))
        let daemon = pid_t(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        kill(daemon, SIGKILL)
    }

    /// Foundation's monitor thread blocked in `wait4` on a running child and so reaped no other: waiting on a
    /// long-running child must not delay seeing another one end.
    @Test func aRunningChildDelaysNoOtherChildsEnding() async throws {
        let long = try ChildProcess(executable: "/bin/sleep", arguments: ["60"])
        defer { long.signal(SIGKILL); _ = long.waitBlocking(timeout: .seconds(5)) }
        let waiting = Task { await long.wait() }
        let started = ContinuousClock.now
        for _ in 0..<5 { #expect(try await ChildProcess.run("/bin/true").termination == .exited(0)) }
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(long.isRunning)
        long.signal(SIGTERM)
        #expect(await waiting.value == .signalled(SIGTERM))
    }

    @Test func stopReachesEverythingInTheChildsProcessGroup() async throws {
        let pidFile = temporaryPath("grandchild")
        defer { unlink(pidFile) }
        let child = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", "sleep 300 & echo $! > \(pidFile); wait"], newProcessGroup: true)
        var grandchild: pid_t?
        for _ in 0..<500 where grandchild == nil {
            try await Task.sleep(for: .milliseconds(10))
            grandchild = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        let started = try #require(grandchild)
        #expect(isAlive(started))
        #expect(await child.stop(grace: .seconds(5)) == .signalled(SIGTERM))
        var gone = false
        for _ in 0..<500 where !gone {
            gone = !isAlive(started)
            if !gone { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(gone, "the command's own child got the signal too")
    }

    @Test func aTimedOutCommandIsStopped() async throws {
        let started = ContinuousClock.now
        let completed = try await ChildProcess.run("/bin/sleep", ["30"], timeout: .milliseconds(300))
        #expect(completed.termination == .signalled(SIGTERM))
        #expect(completed.timedOut)
        #expect(try await ChildProcess.run("/bin/true", timeout: .seconds(30)).timedOut == false)
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func cancellingRunStopsTheCommand() async throws {
        let started = ContinuousClock.now
        let running = Task { try await ChildProcess.run("/bin/sleep", ["30"]) }
        try await Task.sleep(for: .milliseconds(200))
        running.cancel()
        #expect(try await running.value.termination == .signalled(SIGTERM))
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func stopEscalatesToKillWhenTermIsIgnored() async throws {
        let child = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "trap '' TERM; echo ready; sleep 30 & wait"], newProcessGroup: true)
        try await Task.sleep(for: .milliseconds(200))
        #expect(await child.stop(grace: .milliseconds(300)) == .signalled(SIGKILL))
    }

    @Test func theChildStartsWithDefaultSignalsAndNoneOfOurDescriptors() async throws {
        let previous = Glibc.signal(SIGPIPE, SIG_IGN)
        defer { Glibc.signal(SIGPIPE, previous) }
        let path = temporaryPath("open")
        let descriptor = open(path, O_CREAT | O_RDWR, 0o600)  // no O_CLOEXEC: a child would inherit it
        defer { close(descriptor); unlink(path) }
        #expect(descriptor > 2)
        let completed = try await ChildProcess.run("/bin/sh", ["-c", "grep SigIgn /proc/$$/status; ls /proc/$$/fd"])
        let lines = completed.output.split(separator: "\n")
        // The mask of ignored signals, bit n-1 for signal n; the C library's own real-time signals (32, 33) aside.
        let ignored = lines.first.flatMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) }
        #expect(ignored.map { $0 & 0x7fff_ffff } == 0, "SIGPIPE, ignored here, is back to its default in the child: \(completed.output)")
        #expect(!lines.dropFirst().contains(Substring(String(descriptor))), "\(completed.output)")
    }

    @Test func aDetachedCommandOutlivesItsLauncher() async throws {
        let marker = temporaryPath("detached")
        defer { unlink(marker) }
        try await ChildProcess.startDetached(shellScript: "sleep 0.2; touch \(marker)")
        var seen = false
        for _ in 0..<500 where !seen {
            seen = FileManager.default.fileExists(atPath: marker)
            if !seen { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(seen)
    }
}
