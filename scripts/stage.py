#!/usr/bin/env python3
"""Runs one stage of the test suite with a time limit.

    scripts/stage.py [--swift-testing] NAME SECONDS COMMAND...

The command runs in a process group of its own, its output passed through as it comes. A stage past its
limit fails saying which stage it was, which tests were running and the last lines it printed. With
--swift-testing the command is `swift test`, which is given a Swift Testing event stream to follow (its
console output comes in blocks when it is not on a terminal), so the tests still running are known by name.
Whatever the stage leaves running, timed out or not, is stopped (SIGTERM, then SIGKILL): its process group
and every process descended from it, including the test runner that `swift test` starts in a group of its own.
"""
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time


def descendants(root):
    """Every live process descended from `root` (by parent pid), as read from /proc now."""
    children = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children[parent].append(int(entry))
    found, pending = [], [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def signal_all(group, pids, sig):
    """Signals the group and each pid; says whether anything was still there."""
    alive = False
    for send in [lambda: os.killpg(group, sig)] + [lambda pid=pid: os.kill(pid, sig) for pid in pids]:
        try:
            send()
            alive = True
        except (ProcessLookupError, PermissionError):
            pass
    return alive


def stop_stage(process, grace=10.0):
    """SIGTERM to the stage's group and every descendant, then SIGKILL to whatever is left after `grace`."""
    pids = descendants(process.pid)
    if not signal_all(process.pid, pids, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and signal_all(process.pid, pids, 0):
        time.sleep(0.1)
    signal_all(process.pid, pids + descendants(process.pid), signal.SIGKILL)


class SwiftTestingEvents:
    """Follows a Swift Testing event stream (JSON lines) and knows which test functions are running."""

    def __init__(self):
        handle, self.path = tempfile.mkstemp(prefix="swift-testing-events-", suffix=".jsonl")
        os.close(handle)
        self.running = {}  # test id -> when it started
        self.issues = collections.defaultdict(list)
        self.done = threading.Event()

    def follow(self):
        with open(self.path) as stream:
            pending = ""
            while True:
                chunk = stream.readline()
                if not chunk:
                    if self.done.is_set():
                        return
                    time.sleep(0.2)
                    continue
                pending += chunk
                if not pending.endswith("\n"):
                    continue
                line, pending = pending, ""
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                payload = record.get("payload", {})
                test = payload.get("testID") or ""
                if record.get("kind") != "event" or "/" not in test:
                    continue
                if payload.get("kind") == "testStarted":
                    self.running[test] = time.monotonic()
                elif payload.get("kind") == "testEnded":
                    self.running.pop(test, None)
                elif payload.get("kind") == "issueRecorded":
                    self.issues[test] += [message.get("text", "") for message in payload.get("messages", [])]

    def report(self):
        now = time.monotonic()
        if not self.running:
            print("!! no Swift test was running", flush=True)
        for test, since in sorted(self.running.items(), key=lambda item: item[1]):
            print(f"!! still running: {test} (for {now - since:.0f} s)", flush=True)
            for text in self.issues.get(test, [])[:4]:
                print("!!     " + text.replace("\n", "\n!!     ")[:3000], flush=True)


def main():
    arguments = sys.argv[1:]
    events = None
    if arguments[:1] == ["--swift-testing"]:
        events, arguments = SwiftTestingEvents(), arguments[1:]
    if len(arguments) < 3:
        sys.exit(__doc__)
    name, limit, command = arguments[0], float(arguments[1]), arguments[2:]
    if events:
        command += ["--event-stream-output-path", events.path, "--event-stream-version", "0"]
        threading.Thread(target=events.follow, daemon=True).start()
    print(f"== {name} (time limit {limit:.0f} s)", flush=True)
    started_at = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    recent = collections.deque(maxlen=30)

    def relay():
        for raw in process.stdout:
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
            recent.append(raw.decode("utf-8", "replace").rstrip("\n"))

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    try:
        status = process.wait(timeout=limit)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
    except KeyboardInterrupt:
        stop_stage(process, grace=2)
        raise
    if timed_out:
        print(f"\n!! stage '{name}' did not finish within {limit:.0f} s; stopping it", flush=True)
        if events:
            time.sleep(0.5)  # the events written just before
            events.report()
        print("!! its last lines of output:", flush=True)
        for line in list(recent):
            print(f"!!   {line}", flush=True)
    stop_stage(process)
    process.wait()
    reader.join(timeout=5)
    if events:
        events.done.set()
        os.unlink(events.path)
    if timed_out:
        sys.exit(124)
    print(f"== {name}: {'passed' if status == 0 else f'FAILED (exit {status})'} in {time.monotonic() - started_at:.0f} s", flush=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
