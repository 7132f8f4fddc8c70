#!/usr/bin/env python3
"""The cross-language matrix: jobs enqueued by each language's client are worked by each language's worker,
all through one broker. Run it under a broker:

    scripts/with_broker.py -- scripts/cross_language_matrix.py [--languages swift,python,node,ruby] [--jobs 3]

Swift takes part through the `gantry` CLI (enqueue) and `gantry-worker` (a command per job); the others through
their clients' `matrix` programs (clients/<language>/README.md). Each pair gets a queue of its own; a pair passes
when every job it enqueued completed with the result its worker wrote ({"by": worker, "from": producer}).

Then one operation whose steps run in the client languages in turn, each step in a queue of its own worked by
`matrix step QUEUE`: every step appends its language to the global `trail` it read, so the operation passes when
it completed with the trail in step order (what the first step set reached the last).
"""
import argparse
import json
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(os.environ.get("GANTRY_BIN", ROOT / ".build" / "debug"))
PROGRAMS = {
    "python": ["python3", str(ROOT / "clients/python/matrix.py")],
    "node": ["node", str(ROOT / "clients/node/matrix.js")],
    "ruby": ["ruby", str(ROOT / "clients/ruby/matrix.rb")],
}
SWIFT_HANDLER = ("matrix.echo=python3 -c 'import json, sys; job = json.load(sys.stdin); "
                 "print(json.dumps({\"by\": \"swift\", \"from\": job[\"args\"][\"from\"], \"n\": job[\"args\"][\"n\"]}))'")


def rpc(method, params):
    host, port = os.environ["GANTRY_URL"].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode() + b"\n")
        return json.loads(sock.makefile("rb").readline())


def enqueue(language, count, queue):
    if language == "swift":
        ids = []
        for n in range(count):
            output = subprocess.run([str(BIN / "gantry"), "enqueue", "matrix.echo", "--args", json.dumps({"from": "swift", "n": n}),
                                     "--queue", queue, "--json", "--broker", os.environ["GANTRY_URL"]],
                                    check=True, capture_output=True, text=True, timeout=60).stdout
            ids.append(json.loads(output)["id"])
        return ids
    output = subprocess.run(PROGRAMS[language] + ["enqueue", str(count), queue], check=True, capture_output=True, text=True, timeout=60)
    return output.stdout.split()


def work(language, count, queue):
    if language != "swift":
        subprocess.run(PROGRAMS[language] + ["work", str(count), queue], check=True, capture_output=True, text=True, timeout=90)
        return
    # gantry-worker runs until stopped: stop it once the queue's jobs are done.
    worker = subprocess.Popen([str(BIN / "gantry-worker"), "--broker", os.environ["GANTRY_URL"], "--queue", queue,
                               "--concurrency", "2", "--handler", SWIFT_HANDLER],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            counts = rpc("stats", {})["result"]["queues"].get(queue, {}).get("counts", {})
            if counts.get("completed", 0) >= count:
                break
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


def operation_across(languages):
    """One operation, one step per language in the order given; answers the problem, or None."""
    tag = secrets.token_hex(4)
    queues = {language: f"matrix-step-{language}-{tag}" for language in languages}
    started = rpc("operations.start", {"name": "matrix.trail", "globals": {"trail": []}, "branches": {
        "main": [{"type": "matrix.step", "queue": queues[language]} for language in languages]}})
    if "result" not in started:
        return f"operations.start: {started}"
    operation = started["result"]["id"]
    for language in languages:
        subprocess.run(PROGRAMS[language] + ["step", queues[language]], check=True, capture_output=True, text=True, timeout=90)
    result = rpc("operations.get", {"id": operation})["result"]
    if result["state"] != "completed" or result["globals"].get("trail") != languages:
        return f"operation {operation}: {result['state']}, globals {result['globals']}, steps {result.get('steps')}"
    return None


def main():
    parser = argparse.ArgumentParser(description="Jobs from each language worked by each language's worker.")
    parser.add_argument("--languages", default="swift,python,node,ruby")
    parser.add_argument("--jobs", type=int, default=3)
    options = parser.parse_args()
    if "GANTRY_URL" not in os.environ:
        sys.exit("cross_language_matrix: set GANTRY_URL (run it under scripts/with_broker.py)")
    languages = options.languages.split(",")
    failures = []
    rows = []
    for producer in languages:
        row = []
        for worker in languages:
            queue = f"matrix-{producer}-{worker}-{secrets.token_hex(4)}"
            started = time.monotonic()
            try:
                ids = enqueue(producer, options.jobs, queue)
                work(worker, options.jobs, queue)
                for job_id in ids:
                    job = rpc("jobs.get", {"id": job_id})["result"]
                    expected = {"by": worker, "from": producer}
                    if job["state"] != "completed" or {k: job.get("result", {}).get(k) for k in expected} != expected:
                        raise RuntimeError(f"job {job_id}: {job['state']}, result {job.get('result')}")
                row.append(f"ok {time.monotonic() - started:.1f}s")
            except (subprocess.SubprocessError, RuntimeError, OSError, KeyError, ValueError) as error:
                detail = getattr(error, "stderr", "") or ""
                failures.append(f"{producer} → {worker}: {error} {detail[-500:]}")
                row.append("FAIL")
        rows.append(row)
    width = max(len(w) for w in languages + ["producer \\ worker"]) + 2
    print("producer \\ worker".ljust(width) + "".join(w.ljust(12) for w in languages))
    for producer, row in zip(languages, rows):
        print(producer.ljust(width) + "".join(cell.ljust(12) for cell in row))
    steppers = [language for language in languages if language in PROGRAMS]
    if len(steppers) >= 2:
        started = time.monotonic()
        try:
            problem = operation_across(steppers)
        except (subprocess.SubprocessError, OSError, KeyError) as error:
            problem = f"{error} {(getattr(error, 'stderr', '') or '')[-500:]}"
        if problem:
            failures.append(f"operation across {' → '.join(steppers)}: {problem}")
        print(f"operation across {' → '.join(steppers)}: {'FAIL' if problem else 'ok'} {time.monotonic() - started:.1f}s")
    for failure in failures:
        print("FAIL", failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
