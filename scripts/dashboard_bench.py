#!/usr/bin/env python3
"""How long each dashboard page takes on a big table: N jobs (default 10,000,000) in PostgreSQL.

    python3 scripts/dashboard_bench.py [--gantryd .build-bench/release/gantryd] [--jobs 10000000] [--runs 15]

Starts a throwaway gantryd on its own embedded PostgreSQL, fills it through SQL (finished jobs over 20 queues and
50 types, 1 in 100 dead, args {"user_id": 0..99999, "n": i}; plus 50,000 waiting jobs), runs ANALYZE, then asks
for each page `--runs` times over loopback and prints the median and the slowest time per page, with the
PostgreSQL plan's notable nodes for the jobs list filters. Numbers for the README and the issue notes; nothing
here passes or fails.
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from with_broker import ROOT, start, stop  # noqa: E402


def psql(socket_dir, sql):
    result = subprocess.run(["psql", "-h", socket_dir, "-p", "5432", "-U", "gantry", "-d", "gantry", "-v", "ON_ERROR_STOP=1",
                             "-qAt", "-c", sql], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"dashboard_bench: psql failed: {result.stderr}")
    return result.stdout.strip()


def fill(socket_dir, jobs):
    waiting = 50_000
    finished = jobs - waiting
    started = time.monotonic()
    # Loaded without the args indexes, which are built once afterwards (as a restore would).
    psql(socket_dir, "DROP INDEX gantry.finished_jobs_args")
    step = 1_000_000
    for low in range(1, finished + 1, step):
        high = min(finished, low + step - 1)
        psql(socket_dir, f"""
            INSERT INTO gantry.finished_jobs (id, queue, type, args, state, priority, run_at, attempt, max_attempts, tags, meta,
                                              errors, enqueued_at, reserved_at, finished_at, result)
            SELECT g, 'q' || (g % 20), 'type.' || (g % 50), json_build_object('user_id', g % 100000, 'n', g),
                   CASE WHEN g % 100 = 0 THEN 'dead' ELSE 'completed' END, 16383,
                   now() - interval '30 days' + g * interval '200 ms', 1, 25, '{{}}', '{{}}', '[]',
                   now() - interval '30 days' + g * interval '200 ms', now() - interval '30 days' + g * interval '200 ms',
                   now() - interval '30 days' + g * interval '200 ms' + interval '40 ms', '{{"ok": true}}'
            FROM generate_series({low}, {high}) AS g""")
        print(f"dashboard_bench: {high:,} finished jobs ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    psql(socket_dir, f"SELECT setval(pg_get_serial_sequence('gantry.jobs', 'id'), {finished})")
    psql(socket_dir, f"""
        INSERT INTO gantry.jobs (queue, type, args, state, priority, run_at, max_attempts)
        SELECT 'q' || (g % 20), 'type.' || (g % 50), json_build_object('user_id', g % 100000, 'n', g), 'available', 16383, now(), 25
        FROM generate_series(1, {waiting}) AS g""")
    psql(socket_dir, "CREATE INDEX finished_jobs_args ON gantry.finished_jobs USING gin ((args::jsonb) jsonb_path_ops)")
    psql(socket_dir, "ANALYZE")
    print(f"dashboard_bench: {jobs:,} jobs in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return finished


def timed_get(url):
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
        status = response.status
    return (time.perf_counter() - started) * 1000, status


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = ROOT / ".build-bench" / "release" / "gantryd"
    parser.add_argument("--gantryd", default=os.environ.get("GANTRYD", str(default if default.exists() else ROOT / ".build" / "debug" / "gantryd")))
    parser.add_argument("--jobs", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", help="also write the results here")
    options = parser.parse_args()
    directory = pathlib.Path(tempfile.mkdtemp(prefix="gantry-dashboard-bench-"))
    os.chmod(directory, 0o755)
    broker = None
    try:
        broker, _, http = start(options.gantryd, directory / "broker")
        log = (directory / "broker" / "gantryd.log").read_text()
        socket_dir = re.search(r"socket=(\S+)", log).group(1)
        finished = fill(socket_dir, options.jobs)
        middle = finished // 2
        arg = urllib.parse.quote(json.dumps({"user_id": 4242}))
        pages = {
            "/": "/", "/jobs": "/jobs", "/jobs?queue=q3": "/jobs?queue=q3", "/jobs?state=dead": "/jobs?state=dead",
            "/jobs?type=type.7": "/jobs?type=type.7", "/jobs?state=cancelled (none)": "/jobs?state=cancelled",
            "/jobs?type=no.such (none)": "/jobs?type=no.such", '/jobs?args={"user_id":4242}': f"/jobs?args={arg}",
            "/jobs?before=(middle)": f"/jobs?before={middle}", "/jobs?queue=q3&before=(middle)": f"/jobs?queue=q3&before={middle}",
            "/jobs/{id}": f"/jobs/{middle}", "/queues": "/queues", "/workers": "/workers", "/cron": "/cron", "/types": "/types",
            "/audit": "/audit",
        }
        results = {}
        for name, path in pages.items():
            timed_get(f"http://{http}{path}")  # warm
            times = []
            for _ in range(options.runs):
                elapsed, status = timed_get(f"http://{http}{path}")
                if status != 200:
                    sys.exit(f"dashboard_bench: {path} answered {status}")
                times.append(elapsed)
            results[name] = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}
            print(f"{name:40} median {results[name]['median_ms']:8.1f} ms   slowest {results[name]['max_ms']:8.1f} ms", flush=True)
        if options.json:
            pathlib.Path(options.json).write_text(json.dumps({"jobs": options.jobs, "pages": results}, indent=2) + "\n")
    finally:
        if broker:
            stop(broker)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
