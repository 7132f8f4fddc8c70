#!/usr/bin/env python3
"""The README's Performance table, and the broker's cost per request, measured in one run.

It starts a fresh PostgreSQL cluster (fsync and synchronous_commit on, as shipped) and a release gantryd on it,
then measures, one after the other so nothing competes:

  1. throughput and latency: `gantry bench` (enqueue, drain, drain-ids, end-to-end, wake-up, batch, and with
     --backlog the end to end beside a backlog), plus a drain written here that acks by JSON-RPC batch line
     (reserve max 100, then ONE line holding an array of 100 `ack` requests), 4 connections;
  2. broker CPU per request for `jobs.get`, `enqueue` and `ack`: one connection, requests sent one at a time
     (each answered before the next), the broker process's utime+stime (/proc/PID/stat) read before and after;
  3. the same CPU per `jobs.get` for a naive reference server (Benchmarks/reference/server.py: Python asyncio +
     asyncpg, a prepared SELECT by id), with the same job ids on the same database while gantryd idles, and the
     ratio broker / reference: how far the broker is from a straightforward implementation;
  4. with --callgrind, instructions per `jobs.get` and per `enqueue` counted by valgrind's callgrind in a second
     gantryd: runs that differ only in the number of requests of one kind, so start-up, warm-up and shutdown
     cancel out in the differences, and one that differs only in idling longer, to take out what gantryd's
     timers did meanwhile. Unlike CPU time this hardly moves with the machine's load: it is the figure to follow
     from change to change;
  5. the same scenarios on two peers: PgQueuer (a Postgres-backed queue from PyPI, Benchmarks/peer) on the same
     PostgreSQL server, and beanstalkd 1.12 with fsync on every write (Benchmarks/beanstalkd).

Then it prints two tables: throughput/latency (Gantry, PgQueuer, beanstalkd) and CPU per request (Gantry, the
reference, their ratio, callgrind's instructions). Everything it started is stopped and removed at the end.
The peers and the reference run from throwaway virtualenvs made by their setup_venv.sh (PyPI packages, pinned).

Usage:
  scripts/benchmark.py [--scale 1] [--backlog 1000000] [--json results.json] [--callgrind]
                       [--no-peer] [--no-beanstalkd] [--no-reference] [--no-cpu] [--no-batch-drain]
                       [--scratch-path .build] [--no-build]
  scripts/benchmark.py --scale 0.05 --callgrind        # every part, quickly (a few minutes)

CPU time is read in clock ticks (usually 10 ms), so with the default 3,000 requests a figure is good to a few
percent; on a shared machine, repeat runs before trusting a difference under 10%.
"""
import argparse
import contextlib
import itertools
import json
import os
import pathlib
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "Benchmarks"))
from benchkit import run_threads  # noqa: E402
PG_BIN = pathlib.Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The scenarios `gantry bench` runs, in its order (drain drains what enqueue stored).
GANTRY_SCENARIOS = ["enqueue", "drain", "drain-ids", "end-to-end", "wake-up", "batch"]
# Rows of the throughput table: Gantry's scenario → the same work's name in each peer's output (absent: the peer
# has nothing like it). drain-ids and the batch-line drain are Gantry's other ways of draining; the peers' drain
# is on the drain row.
ROWS = [("enqueue", {"pgqueuer": "enqueue_single", "beanstalkd": "enqueue_single"}),
        ("drain", {"pgqueuer": "drain_backlog", "beanstalkd": "drain_backlog"}),
        ("drain-ids", {}),
        ("drain-batch-line", {}),
        ("end-to-end", {"pgqueuer": "end_to_end", "beanstalkd": "end_to_end"}),
        ("wake-up", {"pgqueuer": "wakeup_latency", "beanstalkd": "wakeup_latency"}),
        ("batch", {"pgqueuer": "enqueue_batch"}),
        ("backlog", {})]


def log(message):
    print(f"benchmark: {message}", file=sys.stderr, flush=True)


def jobs_at_scale(full, scale):
    """The job count `gantry bench --scale` uses for a scenario of `full` jobs."""
    return max(100, int(full * scale))


# ---------------------------------------------------------------------------------------------------------------
# Building, PostgreSQL and gantryd


def build_release(scratch_path):
    """Release gantryd and gantry in `scratch_path`; returns the folder holding them."""
    for product in ("gantryd", "gantry"):
        subprocess.run(["swift", "build", "-c", "release", "--scratch-path", str(scratch_path), "--product", product],
                       cwd=ROOT, check=True, stdout=sys.stderr)
    return release_folder(scratch_path)


def release_folder(scratch_path):
    output = subprocess.run(["swift", "build", "-c", "release", "--scratch-path", str(scratch_path), "--show-bin-path"],
                            cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    return pathlib.Path(output.strip().splitlines()[-1])


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_postgres(command):
    """initdb and postgres refuse to run as root."""
    return ["runuser", "-u", "postgres", "--"] + command if os.geteuid() == 0 else command


def start_postgres(directory):
    port = free_port()
    data = directory / "pgdata"
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    subprocess.run(as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(directory / "postgres.log"), "-w", "start",
                                "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} -c max_connections=400 "
                                      "-c shared_buffers=512MB"]),
                   check=True, stdout=subprocess.DEVNULL)
    return port, data


def stop_postgres(data):
    subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_gantryd(gantryd, url, directory, wrapper=(), environment=None, log_name="gantryd.log", patience=120):
    """Starts gantryd (under `wrapper`, e.g. valgrind, when given); returns the process and its address."""
    log_path = directory / log_name
    broker = subprocess.Popen([*wrapper, gantryd, "--database-url", url, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
                               "--log-level", "warning"],
                              stdout=subprocess.PIPE, stderr=open(log_path, "wb"),
                              env={**os.environ, **(environment or {}), "GANTRY_EXIT_WITH_PID": str(os.getpid())})
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        line = broker.stdout.readline().decode()
        if line.startswith("gantryd listening on "):
            return broker, line.split()[-1]
        if not line:
            break
    broker.kill()
    sys.exit("benchmark: gantryd did not start:\n" + log_path.read_text()[-3000:])


def stop_gracefully(process, patience=60):
    """SIGTERM, as an operator would, and wait for the process to exit."""
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=patience)


class FreshBroker:
    """A fresh PostgreSQL cluster with a `gantry` database, and a release gantryd on it."""

    def __init__(self, directory, port, data, broker, address):
        self.directory, self.port, self.data, self.broker, self.address = directory, port, data, broker, address

    @property
    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/gantry"

    def stop_broker(self):
        """SIGTERM; PostgreSQL stays up (the peer runs on it next)."""
        if self.broker:
            stop_gracefully(self.broker)
            self.broker = None


@contextlib.contextmanager
def fresh_broker(prefix, gantryd=None):
    """Starts both and yields a FreshBroker; stops and removes everything when the block ends, however it ends.
    gantryd defaults to the release binary in .build (scripts/soak.py relies on that)."""
    gantryd = gantryd or ROOT / ".build" / "release" / "gantryd"
    directory = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(directory, 0o755)
    started = FreshBroker(directory, None, None, None, None)
    try:
        started.port, started.data = start_postgres(directory)
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(started.port), "-U", "postgres", "gantry"], check=True)
        started.broker, started.address = start_gantryd(str(gantryd), started.url, directory)
        yield started
    finally:
        if started.broker:
            started.broker.kill()
        if started.data:
            stop_postgres(started.data)
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# Gantry's own load generator


def run_gantry_bench(gantry, address, options):
    names = GANTRY_SCENARIOS + (["backlog"] if options.backlog else [])
    command = [gantry, "bench", "--broker", address, "--scenarios", ",".join(names), "--scale", str(options.scale), "--json"]
    if options.backlog:
        command += ["--backlog", str(options.backlog)]
    log(" ".join(command[1:]))
    output = subprocess.run(command, check=True, stdout=subprocess.PIPE).stdout
    return dict(zip(names, json.loads(output)))


# ---------------------------------------------------------------------------------------------------------------
# JSON-RPC over a plain socket: what the drain and the CPU measurements below send


def request_line(request_id, method, params):
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params},
                      separators=(",", ":")).encode() + b"\n"


class RPCConnection:
    """One TCP connection speaking newline-delimited JSON-RPC, one line out and one line back at a time."""

    def __init__(self, address):
        host, port = address.removeprefix("gantry://").rsplit(":", 1)
        self.socket = socket.create_connection((host, int(port)))
        # Requests go one at a time: without this, Nagle's algorithm would hold small lines back.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.answers = self.socket.makefile("rb")
        self.ids = itertools.count(1)

    def exchange(self, line):
        self.socket.sendall(line)
        return self.answers.readline()

    def call(self, method, params):
        answer = json.loads(self.exchange(request_line(next(self.ids), method, params)))
        if "error" in answer:
            raise RuntimeError(f"{method} failed: {answer['error']}")
        return answer["result"]

    def close(self):
        self.answers.close()
        self.socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def enqueue_params(queue, n):
    return {"type": "bench.noop", "args": [n], "queue": queue}


def fill_queue(conn, queue, total):
    """Enqueues `total` no-op jobs into `queue` with enqueue_batch (1,000 a request); returns their ids."""
    ids = []
    for start in range(0, total, 1000):
        jobs = [enqueue_params(queue, n) for n in range(start, min(total, start + 1000))]
        ids += conn.call("enqueue_batch", {"jobs": jobs})["ids"]
    return ids


def reserve_all(conn, queue, total):
    """Reserves `total` jobs of `queue` on this connection, 100 a request; returns their ids."""
    ids = []
    while len(ids) < total:
        jobs = conn.call("reserve", {"queues": [queue], "max": min(100, total - len(ids)), "wait_ms": 1000})["jobs"]
        if not jobs:
            raise RuntimeError(f"reserve found {queue} empty after {len(ids)} of {total} jobs")
        ids += [job["id"] for job in jobs]
    return ids


def first_error(answers):
    """The first JSON-RPC error among answers (parsed: each an object, or a batch's array of them), or None."""
    for answer in answers:
        for each in answer if isinstance(answer, list) else [answer]:
            if "error" in each:
                return each["error"]
    return None


# ---------------------------------------------------------------------------------------------------------------
# A drain acking by JSON-RPC batch line


class FinishLine:
    """Jobs done by all workers together, and the moment they reached the total."""

    def __init__(self, total):
        self.total, self.done, self.reached_at = total, 0, None
        self.abandoned = False  # a worker failed: the others stop instead of waiting for jobs that never come
        self.lock = threading.Lock()

    def add(self, count):
        with self.lock:
            self.done += count
            if self.done >= self.total and self.reached_at is None:
                self.reached_at = time.perf_counter()

    @property
    def reached(self):
        return self.done >= self.total


def ack_batch_line(jobs):
    """ONE line holding a JSON array of one `ack` request per job: the broker answers with one array line."""
    return b"[" + b",".join(b'{"jsonrpc":"2.0","id":%d,"method":"ack","params":{"id":"%s"}}' % (n, job["id"].encode())
                            for n, job in enumerate(jobs)) + b"]\n"


def drain_by_batch_lines(address, total, connections=4, batch=100):
    """A backlog of `total` jobs (enqueue_batch, untimed), drained by `connections` workers that each reserve up to
    `batch` jobs, then ack them all in one batch line; jobs/s from the workers' start to the last ack."""
    queue = f"batch-line-drain-{os.getpid()}"
    with RPCConnection(address) as filler:
        fill_queue(filler, queue, total)
    log(f"drain of {total} jobs by JSON-RPC batch lines of acks, {connections} connections")
    finish = FinishLine(total)
    conns = [RPCConnection(address) for _ in range(connections)]

    def worker(conn):
        try:
            while not finish.reached and not finish.abandoned:
                jobs = conn.call("reserve", {"queues": [queue], "max": batch, "wait_ms": 200})["jobs"]
                if not jobs:
                    continue
                answer = json.loads(conn.exchange(ack_batch_line(jobs)))
                if not isinstance(answer, list) or len(answer) != len(jobs) or first_error([answer]):
                    raise RuntimeError(f"a batch line of {len(jobs)} acks was answered {str(answer)[:300]}")
                finish.add(len(jobs))
        except BaseException:
            finish.abandoned = True
            raise

    released = run_threads([lambda conn=conn: worker(conn) for conn in conns])
    for conn in conns:
        conn.close()
    seconds = finish.reached_at - released
    return {"scenario": f"drain a {total}-job backlog, reserve max {batch} + one batch line of acks, "
                        f"{connections} connections (Python)",
            "jobs": total, "seconds": seconds, "jobs_per_s": total / seconds, "target": "≥ 30,000 jobs/s"}


# ---------------------------------------------------------------------------------------------------------------
# CPU per request


def process_cpu_seconds(pid):
    """User + system CPU of a process so far (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) may hold spaces; the fields after it start with the state (field 3).
        fields = stat.read().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15
    return (utime + stime) / CLOCK_TICKS


def cpu_per_request(pid, conn, lines, warmup):
    """Sends `lines` one at a time on `conn`, each answered before the next. After the first `warmup`, measures
    the server's CPU. Returns the figures and every answer (warm-up included), checked for errors."""
    answers = [conn.exchange(line) for line in lines[:warmup]]
    measured = lines[warmup:]
    cpu_before, wall_before = process_cpu_seconds(pid), time.perf_counter()
    # A tight loop, nothing else: the client's own cost is not what is measured, but it stretches the wall time.
    answers += [conn.exchange(line) for line in measured]
    wall, cpu = time.perf_counter() - wall_before, process_cpu_seconds(pid) - cpu_before
    error = first_error(json.loads(answer) for answer in answers)
    if error:
        raise RuntimeError(f"a measured request failed: {error}")
    figures = {"requests": len(measured), "cpu_us_per_request": cpu * 1e6 / len(measured),
               "round_trip_us": wall * 1e6 / len(measured), "cpu_seconds": cpu}
    return figures, answers


def idle_cpu_ms_per_s(pid, seconds=5.0):
    """What a process spends while nobody asks it anything (gantryd's timers): CPU milliseconds per second."""
    before = process_cpu_seconds(pid)
    time.sleep(seconds)
    return (process_cpu_seconds(pid) - before) * 1000 / seconds


def measure_broker_cpu(pid, address, requests, warmup):
    """gantryd's CPU per enqueue, jobs.get and ack on one connection. Returns the figures, and the jobs.get lines
    (the jobs the enqueues stored) so the reference server can be asked for exactly the same jobs."""
    total = warmup + requests
    # Measured first and only reported: the figures below include it, for the seconds each measurement lasted.
    figures = {"idle_cpu_ms_per_s": idle_cpu_ms_per_s(pid)}
    with RPCConnection(address) as conn:
        log(f"broker CPU per request: {warmup} warm-up + {requests} sequential requests of each kind")
        enqueue_lines = [request_line(n, "enqueue", enqueue_params("cpu-enqueue", n)) for n in range(total)]
        figures["enqueue"], answers = cpu_per_request(pid, conn, enqueue_lines, warmup)

        ids = [json.loads(answer)["result"]["id"] for answer in answers]
        get_lines = [request_line(n, "jobs.get", {"id": job_id}) for n, job_id in enumerate(ids)]
        figures["jobs.get"], _ = cpu_per_request(pid, conn, get_lines, warmup)

        # Only the acks are measured: the jobs are enqueued and reserved (on this connection, which must hold
        # their leases) beforehand.
        fill_queue(conn, "cpu-ack", total)
        held = reserve_all(conn, "cpu-ack", total)
        ack_lines = [request_line(n, "ack", {"id": job_id}) for n, job_id in enumerate(held)]
        figures["ack"], _ = cpu_per_request(pid, conn, ack_lines, warmup)
    return figures, get_lines


def reference_venv():
    venv = pathlib.Path(os.environ.get("REFERENCE_VENV", "/tmp/gantry-reference-venv"))
    subprocess.run(["bash", str(ROOT / "Benchmarks" / "reference" / "setup_venv.sh"), str(venv)], check=True, stdout=sys.stderr)
    return venv


def measure_reference_cpu(postgres_port, get_lines, warmup, directory):
    """The naive reference server's CPU per jobs.get, asked for the same jobs as gantryd in the same way."""
    python = reference_venv() / "bin" / "python"
    server = subprocess.Popen([str(python), str(ROOT / "Benchmarks" / "reference" / "server.py"),
                               "--dsn", f"postgresql://postgres@127.0.0.1:{postgres_port}/gantry"],
                              stdout=subprocess.PIPE, stderr=open(directory / "reference.log", "wb"))
    try:
        line = server.stdout.readline().decode()
        if not line.startswith("reference listening on "):
            sys.exit("benchmark: the reference server did not start:\n" + (directory / "reference.log").read_text()[-3000:])
        log("reference server CPU per jobs.get")
        with RPCConnection(line.split()[-1]) as conn:
            figures, _ = cpu_per_request(server.pid, conn, get_lines, warmup)
        return {"jobs.get": figures}
    finally:
        stop_gracefully(server, patience=10)


# ---------------------------------------------------------------------------------------------------------------
# Instructions per request, counted by callgrind


def callgrind_total(path):
    """Total instructions (Ir) of a callgrind output file: its `totals:` line, or `summary:` in older formats."""
    for line in path.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


# valgrind 3.19 (Debian 12's) writes to the signal mask given to sigsuspend, and libdispatch, on gantryd's main
# thread, passes one in read-only memory: valgrind then dies of SIGSEGV before gantryd listens. Preloaded under
# valgrind only, this sigsuspend hands the kernel a copy on the stack instead; nothing else changes.
SIGSUSPEND_SHIM = r"""
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>
int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return syscall(SYS_rt_sigsuspend, &copy, sizeof(unsigned long));
}
"""


def sigsuspend_shim(directory):
    source, library = directory / "sigsuspend_shim.c", directory / "sigsuspend_shim.so"
    source.write_text(SIGSUSPEND_SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(library), str(source)], check=True)
    return str(library)


def callgrind_run(gantryd, url, directory, warmup, enqueues, gets, idle=0.0):
    """One gantryd under callgrind, from start to exit, that served `warmup` enqueues and jobs.gets, then `enqueues`
    enqueues and `gets` jobs.gets, sequentially on one connection, then idled `idle` seconds. Returns its total
    instructions, and the seconds from its listening to its SIGTERM."""
    name = f"callgrind-{enqueues}-enqueues-{gets}-gets-{idle:g}-s-idle"
    out = directory / f"{name}.out"
    # Under callgrind gantryd runs some 50 times slower: give its start-up and shutdown time.
    broker, address = start_gantryd(gantryd, url, directory, wrapper=["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"],
                                    environment={"LD_PRELOAD": sigsuspend_shim(directory)}, log_name=f"{name}.log", patience=900)
    listening = time.perf_counter()
    try:
        with RPCConnection(address) as conn:
            ids = [conn.call("enqueue", enqueue_params("callgrind", n))["id"] for n in range(warmup)]
            for job_id in ids:
                conn.call("jobs.get", {"id": job_id})
            for n in range(enqueues):
                conn.call("enqueue", enqueue_params("callgrind", n))
            for n in range(gets):
                conn.call("jobs.get", {"id": ids[n % len(ids)]})
            time.sleep(idle)
        up = time.perf_counter() - listening
    finally:
        stop_gracefully(broker, patience=900)
    return callgrind_total(out), up


def debug_free_copy(gantryd, directory):
    """A copy of gantryd without its debug information: valgrind 3.19 cannot read the DWARF 5 that swiftc writes
    ("unhandled dwarf2 abbrev form", then it gives up). The code, and so the instruction count, is the same."""
    copy = directory / "gantryd-without-debug-info"
    subprocess.run(["strip", "--strip-debug", "-o", str(copy), str(gantryd)], check=True)
    return str(copy)


def callgrind_per_request(gantryd, url, directory, requests, warmup=100, base=100, idle=10.0):
    """Instructions per enqueue and per jobs.get, from four runs: a base run, two with `requests` more of one kind,
    and one that idles `idle` seconds more. Start-up, warm-up and shutdown cancel in the differences. What gantryd
    does while idle (its timers: about 1% of a core here) does not: it grows with the seconds a run lasts, which
    follow the disk's fsyncs and the machine's load. The idle run measures that rate, and each difference is
    corrected by it for the seconds the longer run lasted, so that what is left is the requests' own work."""
    log(f"callgrind: four gantryd runs under valgrind ({base} and {base + requests} requests of each kind, "
        f"{idle:g} s idle)")
    gantryd = debug_free_copy(gantryd, directory)
    base_run = callgrind_run(gantryd, url, directory, warmup, base, base)
    more_enqueues = callgrind_run(gantryd, url, directory, warmup, base + requests, base)
    more_gets = callgrind_run(gantryd, url, directory, warmup, base, base + requests)
    idler = callgrind_run(gantryd, url, directory, warmup, base, base, idle=idle)
    idle_rate = (idler[0] - base_run[0]) / (idler[1] - base_run[1])

    def per_request(run):
        return (run[0] - base_run[0] - idle_rate * (run[1] - base_run[1])) / requests

    return {"enqueue": per_request(more_enqueues), "jobs.get": per_request(more_gets), "requests": requests,
            "idle_instructions_per_s": idle_rate,
            "uncorrected": {"enqueue": (more_enqueues[0] - base_run[0]) / requests,
                            "jobs.get": (more_gets[0] - base_run[0]) / requests},
            "runs": {name: {"instructions": run[0], "seconds_up": run[1]} for name, run in
                     [("base", base_run), ("more_enqueues", more_enqueues), ("more_gets", more_gets), ("idle", idler)]}}


# ---------------------------------------------------------------------------------------------------------------
# The peers


def run_pgqueuer(port, options, directory):
    venv = pathlib.Path(os.environ.get("PEER_VENV", "/tmp/gantry-peer-venv"))
    subprocess.run(["bash", str(ROOT / "Benchmarks" / "peer" / "setup_venv.sh"), str(venv)], check=True, stdout=sys.stderr)
    out = directory / "peer.json"
    command = [str(venv / "bin" / "python"), str(ROOT / "Benchmarks" / "peer" / "peer_bench.py"),
               "--dsn", f"postgresql://postgres@127.0.0.1:{port}/postgres", "--database", "peer_bench",
               "--batch-producers", "4", "--json", str(out)]
    if options.scale < 1:
        command.append("--quick")
    log("peer " + " ".join(command[2:]))
    subprocess.run(command, check=True, stdout=sys.stderr)
    return read_peer_report(out)


def run_beanstalkd(options, directory):
    venv = pathlib.Path(os.environ.get("BEANSTALKD_VENV", "/tmp/gantry-beanstalkd-venv"))
    subprocess.run(["bash", str(ROOT / "Benchmarks" / "beanstalkd" / "setup_venv.sh"), str(venv)], check=True, stdout=sys.stderr)
    out = directory / "beanstalkd.json"
    command = [str(venv / "bin" / "python"), str(ROOT / "Benchmarks" / "beanstalkd" / "beanstalk_bench.py"),
               "--scale", str(options.scale), "--dir", str(directory), "--json", str(out)]
    log("beanstalkd " + " ".join(command[2:]))
    subprocess.run(command, check=True, stdout=sys.stderr)
    return read_peer_report(out)


def read_peer_report(path):
    """A peer's JSON report → ({scenario: row}, "name version")."""
    report = json.loads(path.read_text())
    rows = report.get("results", report if isinstance(report, list) else [])
    name = f"{report.get('peer', 'peer')} {report.get('version', '')}".strip()
    return {row["scenario"]: row for row in rows}, name


# ---------------------------------------------------------------------------------------------------------------
# Tables


def number(value, unit=""):
    if value is None:
        return "–"
    return f"{value:,.0f}{unit}" if value >= 100 else f"{value:.2f}{unit}"


def is_rate(row):
    return row.get("jobs_per_s") is not None


def cell(row):
    if row is None:
        return "–"
    if is_rate(row):
        return f"{number(row['jobs_per_s'])} jobs/s"
    return f"p50 {number(row.get('p50_ms'), ' ms')}, p99 {number(row.get('p99_ms'), ' ms')}"


def times(value):
    """A ratio with two decimals, or two significant digits when it is small (0.0025×, not 0.00×)."""
    return f"{value:.2f}×" if value >= 0.1 else f"{value:.2g}×"


def ratio(ours, theirs):
    """Gantry against a peer: the rate ratio for throughput rows, the p50 ratio for latency rows."""
    if theirs is None:
        return "–"
    if is_rate(ours):
        return f"{times(ours['jobs_per_s'] / theirs['jobs_per_s'])} the rate" if theirs.get("jobs_per_s") else "–"
    return f"{times(ours['p50_ms'] / theirs['p50_ms'])} the p50" if theirs.get("p50_ms") and ours.get("p50_ms") else "–"


def markdown_row(cells):
    return "| " + " | ".join(cells) + " |"


def throughput_table(gantry, peers):
    """peers: [(kind, "name version", {scenario: row})], kind as in ROWS."""
    header = (["scenario", "target", "Gantry"] + [name for _, name, _ in peers]
              + [f"Gantry vs {name.split()[0]}" for _, name, _ in peers])
    lines = [markdown_row(header), markdown_row(["---"] * len(header))]
    for gantry_key, peer_keys in ROWS:
        ours = gantry.get(gantry_key)
        if ours is None:
            continue
        theirs = [rows.get(peer_keys[kind]) if kind in peer_keys else None for kind, _, rows in peers]
        lines.append(markdown_row([ours["scenario"], ours.get("target", "–"), cell(ours)]
                                  + [cell(row) for row in theirs] + [ratio(ours, row) for row in theirs]))
    return "\n".join(lines)


def cpu_table(cpu, requests):
    broker, reference, callgrind = cpu.get("gantry", {}), cpu.get("reference", {}), cpu.get("callgrind")
    header = ["request", "Gantry CPU/request", "reference CPU/request", "Gantry ÷ reference"]
    if callgrind:
        header.append(f"Gantry instructions/request (callgrind, {callgrind['requests']} requests)")
    lines = [markdown_row(header), markdown_row(["---"] * len(header))]
    for method in ("jobs.get", "enqueue", "ack"):
        ours, theirs = broker.get(method), reference.get(method)
        broker_vs_reference = (times(ours["cpu_us_per_request"] / theirs["cpu_us_per_request"])
                               if ours and theirs and theirs["cpu_us_per_request"] else "–")
        row = [method, number(ours and ours["cpu_us_per_request"], " µs"),
               number(theirs and theirs["cpu_us_per_request"], " µs"), broker_vs_reference]
        if callgrind:
            row.append(number(callgrind.get(method)))
        lines.append(markdown_row(row))
    lines.append(f"\nOne connection, {requests:,} requests one at a time after a warm-up; CPU = the server process's "
                 "utime + stime (PostgreSQL's own CPU not included).")
    if "idle_cpu_ms_per_s" in broker:
        lines.append(f"Idle, gantryd used {broker['idle_cpu_ms_per_s']:.1f} ms of CPU per second; the CPU figures include "
                     "that for the time they took (round trips: " + ", ".join(
                         f"{method} {broker[method]['round_trip_us']:,.0f} µs" for method in ("jobs.get", "enqueue", "ack"))
                     + ").")
    if callgrind:
        lines.append(f"Instructions: differences between callgrind runs, less gantryd's idle "
                     f"{callgrind['idle_instructions_per_s'] / 1e6:.1f} M instructions/s for the seconds a run lasted longer.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------


def parse_options():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="scale every scenario's job count (0.1 for a quick look)")
    parser.add_argument("--backlog", type=int, default=0, help="also run end to end beside this many queued jobs")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--no-peer", action="store_true", help="skip PgQueuer")
    parser.add_argument("--no-beanstalkd", action="store_true", help="skip beanstalkd")
    parser.add_argument("--no-batch-drain", action="store_true", help="skip the drain that acks by JSON-RPC batch line")
    parser.add_argument("--no-cpu", action="store_true", help="skip CPU per request (and so the reference server)")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference server")
    parser.add_argument("--cpu-requests", type=int, default=3000, help="requests measured per kind (default 3000)")
    parser.add_argument("--cpu-warmup", type=int, default=300, help="requests sent first, not measured (default 300)")
    parser.add_argument("--callgrind", action="store_true",
                        help="also count instructions per jobs.get and enqueue under valgrind (about 2-5 minutes more)")
    parser.add_argument("--callgrind-requests", type=int, default=500, help="requests the callgrind runs differ by (default 500)")
    parser.add_argument("--scratch-path", default=".build",
                        help="SwiftPM scratch folder for the release build (default .build; another one keeps this "
                             "build from waiting on, or being waited on by, builds in .build)")
    parser.add_argument("--no-build", action="store_true", help="use the release binaries already in --scratch-path")
    return parser.parse_args()


def main():
    options = parse_options()
    scratch = ROOT / options.scratch_path
    if options.no_build:
        release = release_folder(scratch)
    else:
        log(f"building release binaries in {scratch}")
        release = build_release(scratch)
    gantryd = release / "gantryd"

    cpu, peers = {}, []
    with fresh_broker("gantry-benchmark-", gantryd=gantryd) as started:
        gantry = run_gantry_bench(str(release / "gantry"), started.address, options)
        if not options.no_batch_drain:
            gantry["drain-batch-line"] = drain_by_batch_lines(started.address, jobs_at_scale(100_000, options.scale))
        if not options.no_cpu:
            cpu["gantry"], get_lines = measure_broker_cpu(started.broker.pid, started.address, options.cpu_requests,
                                                          options.cpu_warmup)
            if not options.no_reference:
                # gantryd stays up, idle, as it would beside any other client of its database.
                cpu["reference"] = measure_reference_cpu(started.port, get_lines, options.cpu_warmup, started.directory)
        started.stop_broker()
        if options.callgrind:
            cpu["callgrind"] = callgrind_per_request(str(gantryd), started.url, started.directory, options.callgrind_requests)
        if not options.no_peer:
            rows, name = run_pgqueuer(started.port, options, started.directory)
            peers.append(("pgqueuer", name, rows))
    # beanstalkd needs no PostgreSQL: it runs once the cluster is gone, so no checkpoint competes for the disk.
    if not options.no_beanstalkd:
        with tempfile.TemporaryDirectory(prefix="gantry-benchmark-beanstalkd-") as directory:
            rows, name = run_beanstalkd(options, pathlib.Path(directory))
        peers.append(("beanstalkd", name, rows))

    machine = f"{platform.system()} {platform.release()}, {os.cpu_count()} cores; PostgreSQL 15, fsync on, same machine"
    print(f"\n{machine}; scale {options.scale}\n")
    print(throughput_table(gantry, peers))
    if cpu:
        print()
        print(cpu_table(cpu, options.cpu_requests))
    if options.json:
        pathlib.Path(options.json).write_text(json.dumps({"machine": machine, "scale": options.scale, "gantry": gantry,
                                                          "peers": {name: rows for _, name, rows in peers}, "cpu": cpu},
                                                         indent=2))


if __name__ == "__main__":
    main()
