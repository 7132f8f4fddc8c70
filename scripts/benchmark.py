#!/usr/bin/env python3
"""The README's Performance table, reproduced: starts a fresh PostgreSQL cluster (fsync and synchronous_commit
on, as shipped), a release gantryd on it, runs `gantry bench`, then runs a widely used Postgres-backed queue from
PyPI (Benchmarks/peer, in a throwaway virtualenv) doing the same work on the same PostgreSQL server, and prints
both side by side with their ratio. Everything is stopped and removed at the end.

Usage: scripts/benchmark.py [--scale 1] [--no-peer] [--json results.json] [--backlog 1000000]
"""
import argparse
import contextlib
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
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PG_BIN = pathlib.Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
# Gantry's scenario → the peer's name for the same work.
SCENARIOS = [("enqueue", "enqueue_single"), ("drain", "drain_backlog"), ("end-to-end", "end_to_end"),
             ("wake-up", "wakeup_latency"), ("batch", "enqueue_batch")]


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


def start_gantryd(gantryd, url, directory):
    log = open(directory / "gantryd.log", "wb")
    broker = subprocess.Popen([gantryd, "--database-url", url, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "warning"],
                              stdout=subprocess.PIPE, stderr=log, env={**os.environ, "GANTRY_EXIT_WITH_PID": str(os.getpid())})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = broker.stdout.readline().decode()
        if line.startswith("gantryd listening on "):
            return broker, line.split()[-1]
        if not line:
            break
    sys.exit("benchmark: gantryd did not start:\n" + (directory / "gantryd.log").read_text()[-3000:])


class FreshBroker:
    """A fresh PostgreSQL cluster with a `gantry` database, and a release gantryd on it."""

    def __init__(self, directory, port, data, broker, address):
        self.directory, self.port, self.data, self.broker, self.address = directory, port, data, broker, address

    def stop_broker(self):
        """SIGTERM, as an operator would; PostgreSQL stays up (the peer runs on it next)."""
        if self.broker:
            self.broker.send_signal(signal.SIGTERM)
            self.broker.wait(timeout=60)
            self.broker = None


@contextlib.contextmanager
def fresh_broker(prefix):
    """Starts both and yields a FreshBroker; stops and removes everything when the block ends, however it ends."""
    directory = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(directory, 0o755)
    started = FreshBroker(directory, None, None, None, None)
    try:
        started.port, started.data = start_postgres(directory)
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(started.port), "-U", "postgres", "gantry"], check=True)
        started.broker, started.address = start_gantryd(
            str(ROOT / ".build" / "release" / "gantryd"), f"postgres://postgres@127.0.0.1:{started.port}/gantry", directory)
        yield started
    finally:
        if started.broker:
            started.broker.kill()
        if started.data:
            stop_postgres(started.data)
        shutil.rmtree(directory, ignore_errors=True)


def run_gantry_bench(gantry, address, options):
    names = [gantry_name for gantry_name, _ in SCENARIOS] + (["backlog"] if options.backlog else [])
    command = [gantry, "bench", "--broker", address, "--scenarios", ",".join(names), "--scale", str(options.scale), "--json"]
    if options.backlog:
        command += ["--backlog", str(options.backlog)]
    print("benchmark: " + " ".join(command[1:]), file=sys.stderr, flush=True)
    output = subprocess.run(command, check=True, stdout=subprocess.PIPE).stdout
    return dict(zip(names, json.loads(output)))


def run_peer(port, options, directory):
    venv = pathlib.Path(os.environ.get("PEER_VENV", "/tmp/gantry-peer-venv"))
    subprocess.run(["bash", str(ROOT / "Benchmarks" / "peer" / "setup_venv.sh"), str(venv)], check=True, stdout=sys.stderr)
    out = directory / "peer.json"
    command = [str(venv / "bin" / "python"), str(ROOT / "Benchmarks" / "peer" / "peer_bench.py"),
               "--dsn", f"postgresql://postgres@127.0.0.1:{port}/postgres", "--database", "peer_bench",
               "--batch-producers", "4", "--json", str(out)]
    if options.scale < 1:
        command.append("--quick")
    print("benchmark: peer " + " ".join(command[2:]), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, stdout=sys.stderr)
    report = json.loads(out.read_text())
    rows = report.get("results", report if isinstance(report, list) else [])
    return {row["scenario"]: row for row in rows}, report.get("peer", "peer"), report.get("version", "")


def number(value, unit=""):
    if value is None:
        return "–"
    return f"{value:,.0f}{unit}" if value >= 100 else f"{value:.2f}{unit}"


def table(gantry, peer, peer_name):
    lines = [f"| scenario | target | Gantry | {peer_name} | Gantry vs {peer_name.split()[0]} |", "|---|---|---|---|---|"]
    for gantry_key, peer_key in SCENARIOS + [("backlog", None)]:
        ours = gantry.get(gantry_key)
        if ours is None:
            continue
        theirs = peer.get(peer_key) if peer_key else None
        if ours.get("jobs_per_s") is not None:
            mine = f"{number(ours['jobs_per_s'])} jobs/s"
            other = f"{number(theirs.get('jobs_per_s'))} jobs/s" if theirs else "–"
            ratio = f"{ours['jobs_per_s'] / theirs['jobs_per_s']:.2f}× the rate" if theirs and theirs.get("jobs_per_s") else "–"
        else:
            mine = f"p50 {number(ours.get('p50_ms'), ' ms')}, p99 {number(ours.get('p99_ms'), ' ms')}"
            other = f"p50 {number(theirs.get('p50_ms'), ' ms')}, p99 {number(theirs.get('p99_ms'), ' ms')}" if theirs else "–"
            ratio = (f"{ours['p50_ms'] / theirs['p50_ms']:.2f}× the p50" if theirs and theirs.get("p50_ms") and ours.get("p50_ms")
                     else "–")
        lines.append(f"| {ours['scenario']} | {ours['target']} | {mine} | {other} | {ratio} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="scale every scenario's job count (0.1 for a quick look)")
    parser.add_argument("--no-peer", action="store_true", help="Gantry only")
    parser.add_argument("--backlog", type=int, default=0, help="also run end to end beside this many queued jobs")
    parser.add_argument("--json", help="write every figure here")
    options = parser.parse_args()

    print("benchmark: building release binaries", file=sys.stderr, flush=True)
    subprocess.run(["swift", "build", "-c", "release", "--product", "gantryd"], cwd=ROOT, check=True, stdout=sys.stderr)
    subprocess.run(["swift", "build", "-c", "release", "--product", "gantry"], cwd=ROOT, check=True, stdout=sys.stderr)
    release = ROOT / ".build" / "release"

    with fresh_broker("gantry-benchmark-") as started:
        gantry = run_gantry_bench(str(release / "gantry"), started.address, options)
        started.stop_broker()
        peer, peer_name = {}, "peer"
        if not options.no_peer:
            peer, peer_name, version = run_peer(started.port, options, started.directory)
            peer_name = f"{peer_name} {version}".strip()
    machine = f"{platform.system()} {platform.release()}, {os.cpu_count()} cores; PostgreSQL 15, fsync on, same machine"
    print(f"\n{machine}; scale {options.scale}\n")
    print(table(gantry, peer, peer_name))
    if options.json:
        pathlib.Path(options.json).write_text(json.dumps({"machine": machine, "scale": options.scale, "gantry": gantry,
                                                          "peer": peer, "peer_name": peer_name}, indent=2))


if __name__ == "__main__":
    main()
