#!/usr/bin/env python3
"""Peer benchmark: beanstalkd doing the no-op work of Gantry's benchmark scenarios.

    VENV/bin/python beanstalk_bench.py [--scale 1] [--scenarios enqueue_single,drain_backlog,end_to_end,wakeup_latency]
                                       [--json out.json] [--beanstalkd /usr/bin/beanstalkd]

Run it from the virtualenv made by setup_venv.sh (greenstalk pinned there). scripts/benchmark.py runs it
beside `gantry bench` and the PgQueuer peer and prints a beanstalkd column.

Every scenario gets a beanstalkd of its own, started by this script on a free port of 127.0.0.1 with a fresh
binlog directory and `-f 0`: the binlog is fsynced after every write, so a put or delete is answered only once
it is on disk, the durability Gantry's enqueue and ack have with PostgreSQL's fsync on. The job counts are
Gantry's (`gantry bench --scale S`: max(100, full size × S)):

  enqueue_single   100,000 puts, 64 connections (one thread each), one put in flight per connection;
                   jobs/s and the p50/p99 of one put.
  drain_backlog    100,000 jobs preloaded without timing, then reserve + delete over --drain-connections
                   connections (default 8, as Gantry's drain) until all are gone; jobs/s. beanstalkd has no
                   batch reserve or delete, so every job costs two round trips and one fsync.
  end_to_end       50,000 jobs: 64 producers putting one job at a time while 64 workers reserve + delete;
                   jobs/s from the first put to the last delete, latency from the put call starting to the
                   delete returning.
  wakeup_latency   1,000 jobs, one put every 5 ms, one idle worker blocked in reserve; latency from the put
                   returning to the reserve returning. The worker deletes each job before its next reserve:
                   only the connection holding a job may delete it, and it serves its commands in order, so
                   a delete cannot go out beside a waiting reserve as Gantry's ack does. When two fsyncs
                   (put, delete) take more than 5 ms, the worker falls behind and the latency grows.

The backlog is preloaded through a first beanstalkd started with -F (no fsync), which is then stopped; the
timed one starts on the same binlog directory with -f 0 and loads the jobs from it. This only saves minutes
of preloading (one fsync per put) and changes nothing in what is timed.

The output has the shape of Benchmarks/peer/peer_bench.py's: a table on stdout, and with --json
{"peer", "version", "client", "results": [{"scenario", "jobs", "seconds", "jobs_per_s", "p50_ms", "p99_ms",
"notes"}]}. All clients are threads of this one process (greenstalk is a blocking client); the GIL is released
while a thread waits on its socket, and beanstalkd's fsyncs, not Python, set the pace.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import greenstalk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchkit import ms, now, percentile, run_threads  # noqa: E402

TUBE = "bench"
BODY = '{"n":0}'  # a small payload, like Gantry's one-int args
SCENARIOS = ["enqueue_single", "drain_backlog", "end_to_end", "wakeup_latency"]
# Full-size job counts, Gantry's (Sources/gantry/Bench/BenchCommand.swift).
FULL_JOBS = {"enqueue_single": 100_000, "drain_backlog": 100_000, "end_to_end": 50_000, "wakeup_latency": 1_000}


def result(scenario: str, jobs: int, seconds: float, latencies: list[float] | None, notes: str,
           rate: bool = True) -> dict:
    return {"scenario": scenario, "jobs": jobs, "seconds": round(seconds, 3),
            "jobs_per_s": round(jobs / seconds, 1) if rate else None,
            "p50_ms": ms(percentile(latencies or [], 50)), "p99_ms": ms(percentile(latencies or [], 99)),
            "notes": notes}


# --------------------------------------------------------------------------------------------
# The server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(port: int, server: subprocess.Popen) -> None:
    deadline = now() + 30
    while now() < deadline:
        if server.poll() is not None:
            sys.exit(f"beanstalk_bench: beanstalkd exited with {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("beanstalk_bench: beanstalkd did not start listening")


@contextmanager
def beanstalkd(binary: str, binlog: str, fsync: bool = True):
    """A beanstalkd on a free port writing its binlog to `binlog`; yields its address, stops it after."""
    port = free_port()
    sync = ["-f", "0"] if fsync else ["-F"]
    server = subprocess.Popen([binary, "-l", "127.0.0.1", "-p", str(port), "-b", binlog] + sync)
    try:
        wait_until_listening(port, server)
        yield ("127.0.0.1", port)
    finally:
        server.terminate()
        server.wait(timeout=30)


def preload(address: tuple[str, int], total: int) -> None:
    """Puts `total` jobs fast: pipelined on one raw connection, 1,000 commands per write."""
    with socket.create_connection(address) as conn, conn.makefile("rb") as answers:
        conn.sendall(f"use {TUBE}\r\n".encode())
        answers.readline()
        put = f"put 1024 0 600 {len(BODY)}\r\n{BODY}\r\n".encode()
        for start in range(0, total, 1000):
            count = min(1000, total - start)
            conn.sendall(put * count)
            for _ in range(count):
                answer = answers.readline()
                if not answer.startswith(b"INSERTED"):
                    sys.exit(f"beanstalk_bench: preload put answered {answer!r}")


def client(address: tuple[str, int]) -> greenstalk.Client:
    return greenstalk.Client(address, use=TUBE, watch=TUBE)


# --------------------------------------------------------------------------------------------
# Running many clients at once


class Counter:
    """A count shared by threads, with the moment it reached `total`."""

    def __init__(self, total: int) -> None:
        self.total, self.value, self.reached_at = total, 0, None
        self.abandoned = False  # a thread failed: the workers stop instead of waiting for jobs that never come
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.value += n
            if self.value >= self.total and self.reached_at is None:
                self.reached_at = now()

    @property
    def done(self) -> bool:
        return self.value >= self.total or self.abandoned


def share(total: int, part: int, parts: int) -> int:
    """Splits `total` over `parts` as evenly as it goes (as Gantry's bench does)."""
    return total // parts + (1 if part < total % parts else 0)


def reserve_and_delete_until(conn: greenstalk.Client, counter: Counter, on_job: Callable[[str], None] | None = None):
    """A worker: reserve + delete one job at a time until `counter` reaches its total."""
    while not counter.done:
        try:
            job = conn.reserve(timeout=1)
        except greenstalk.TimedOutError:
            continue
        conn.delete(job)
        if on_job:
            on_job(job.body)
        counter.add()


# --------------------------------------------------------------------------------------------
# Scenarios


def enqueue_single(options, address) -> dict:
    total, connections = options.jobs("enqueue_single"), options.connections
    conns = [client(address) for _ in range(connections)]
    latencies: list[list[float]] = [[] for _ in conns]

    def producer(index: int) -> Callable[[], None]:
        def put_share() -> None:
            for _ in range(share(total, index, connections)):
                started = now()
                conns[index].put(BODY)
                latencies[index].append(now() - started)
        return put_share

    started = run_threads([producer(i) for i in range(connections)])
    seconds = now() - started
    for conn in conns:
        conn.close()
    return result("enqueue_single", total, seconds, [x for each in latencies for x in each],
                  f"{connections} connections, one put in flight each")


def drain_backlog(options, address) -> dict:
    total, connections = options.jobs("drain_backlog"), options.drain_connections
    conns = [client(address) for _ in range(connections)]
    counter = Counter(total)
    started = run_threads([lambda conn=conn: reserve_and_delete_until(conn, counter) for conn in conns],
                          on_failure=lambda: setattr(counter, "abandoned", True))
    seconds = counter.reached_at - started
    for conn in conns:
        conn.close()
    return result("drain_backlog", total, seconds, None,
                  f"{connections} connections, reserve + delete one job at a time; backlog preloaded untimed")


def end_to_end(options, address) -> dict:
    total, producers, workers = options.jobs("end_to_end"), options.connections, options.connections
    producer_conns = [client(address) for _ in range(producers)]
    worker_conns = [client(address) for _ in range(workers)]
    counter = Counter(total)
    latencies: list[float] = []  # list.append is atomic under the GIL

    def producer(index: int) -> Callable[[], None]:
        def put_share() -> None:
            for _ in range(share(total, index, producers)):
                # The body carries the moment the put started: the workers are threads of this process.
                producer_conns[index].put(repr(now()))
        return put_share

    def completed(body: str) -> None:
        latencies.append(now() - float(body))

    started = run_threads([producer(i) for i in range(producers)]
                          + [lambda conn=conn: reserve_and_delete_until(conn, counter, completed) for conn in worker_conns],
                          counter)
    seconds = counter.reached_at - started
    for conn in producer_conns + worker_conns:
        conn.close()
    return result("end_to_end", total, seconds, latencies,
                  f"{producers} producers putting one job at a time, {workers} workers reserve + delete; "
                  "latency = put call start to delete returning")


def wakeup_latency(options, address) -> dict:
    total, interval = options.jobs("wakeup_latency"), 0.005
    producer_conn, worker_conn = client(address), client(address)
    put_returned: dict[int, float] = {}
    latencies: list[float] = []

    def worker() -> None:
        for _ in range(total):
            job = worker_conn.reserve(timeout=30)
            reserved = now()
            worker_conn.delete(job)
            # The put's answer may reach the producer after the job reached the worker; wait for it.
            while job.id not in put_returned:
                time.sleep(0.0001)
            latencies.append(reserved - put_returned[job.id])

    def producer() -> None:
        start = now()
        for i in range(total):
            # A job every 5 ms on a fixed schedule, as Gantry's and PgQueuer's wake-up scenarios.
            delay = start + i * interval - now()
            if delay > 0:
                time.sleep(delay)
            job_id = producer_conn.put(BODY)
            put_returned[job_id] = now()

    started = run_threads([worker, producer])
    seconds = now() - started
    producer_conn.close()
    worker_conn.close()
    return result("wakeup_latency", total, seconds, latencies,
                  "one idle worker blocked in reserve, a put every 5 ms; latency = put returned -> reserve returned",
                  rate=False)


RUNNERS = {"enqueue_single": enqueue_single, "drain_backlog": drain_backlog, "end_to_end": end_to_end,
           "wakeup_latency": wakeup_latency}


def run_scenario(name: str, options) -> dict:
    """Runs one scenario on a beanstalkd of its own, with an empty binlog directory."""
    binlog = tempfile.mkdtemp(prefix=f"beanstalk-{name}-", dir=options.dir)
    try:
        if name == "drain_backlog":
            with beanstalkd(options.beanstalkd, binlog, fsync=False) as address:
                preload(address, options.jobs(name))
        with beanstalkd(options.beanstalkd, binlog) as address:
            return RUNNERS[name](options, address)
    finally:
        shutil.rmtree(binlog, ignore_errors=True)


def beanstalkd_version(binary: str) -> str:
    output = subprocess.run([binary, "-v"], check=True, stdout=subprocess.PIPE, text=True).stdout
    return output.split()[-1]  # "beanstalkd 1.12"


def print_table(results: list[dict]) -> None:
    def fmt(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    header = f"{'scenario':<16} {'jobs':>9} {'seconds':>9} {'jobs/s':>10} {'p50 ms':>9} {'p99 ms':>9}"
    print(header)
    print("-" * len(header))
    for row in results:
        print(f"{row['scenario']:<16} {row['jobs']:>9,} {row['seconds']:>9.2f} {fmt(row['jobs_per_s'], 0):>10} "
              f"{fmt(row['p50_ms'], 2):>9} {fmt(row['p99_ms'], 2):>9}")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--scale", type=float, default=1.0, help="as gantry bench --scale: max(100, full size × scale) jobs")
    parser.add_argument("--connections", type=int, default=64, help="producers (and end_to_end workers), default 64")
    parser.add_argument("--drain-connections", type=int, default=8, help="drain_backlog connections (default 8)")
    parser.add_argument("--beanstalkd", default=shutil.which("beanstalkd") or "/usr/bin/beanstalkd")
    parser.add_argument("--dir", default=None, help="where the binlog directories go (default: the temp dir)")
    parser.add_argument("--json", help="write the results here")
    options = parser.parse_args()
    options.jobs = lambda name: max(100, int(FULL_JOBS[name] * options.scale))
    names = [name.strip() for name in options.scenarios.split(",") if name.strip()]
    unknown = [name for name in names if name not in RUNNERS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")

    version = beanstalkd_version(options.beanstalkd)
    print(f"beanstalkd {version} (-f 0: fsync every write), greenstalk {greenstalk.__version__}", file=sys.stderr)
    results = []
    for name in names:
        print(f"{name} ...", file=sys.stderr, flush=True)
        results.append(run_scenario(name, options))
        print(f"{name}: done in {results[-1]['seconds']:.2f} s", file=sys.stderr, flush=True)
    print_table(results)
    if options.json:
        with open(options.json, "w") as out:
            json.dump({"peer": "beanstalkd", "version": version, "client": f"greenstalk {greenstalk.__version__}",
                       "fsync": "every write (-f 0)", "results": results}, out, indent=2)
            out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
