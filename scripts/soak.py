#!/usr/bin/env python3
"""The sustained-load check: a fresh PostgreSQL cluster and release gantryd (as scripts/benchmark.py), then
`gantry bench --scenarios soak` (end to end at a steady rate) while, every minute, the size of gantry.jobs and
gantry.finished_jobs, their dead rows and autovacuum runs are read from PostgreSQL. Prints one row per minute:
throughput and table sizes side by side, so growth or a slowdown shows as a slope.

Usage: scripts/soak.py [--rate 300] [--minutes 30] [--json soak.json]
"""
import argparse
import json
import pathlib
import subprocess
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from benchmark import PG_BIN, ROOT, fresh_broker  # noqa: E402

TABLE_STATS = """
SELECT relname, pg_total_relation_size(relid), n_live_tup, n_dead_tup, autovacuum_count
FROM pg_stat_user_tables WHERE schemaname = 'gantry' AND relname IN ('jobs', 'finished_jobs') ORDER BY relname
"""


def sample(port):
    output = subprocess.run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "gantry",
                             "-At", "-F", "\t", "-c", TABLE_STATS], check=True, capture_output=True, text=True).stdout
    tables = {}
    for line in output.strip().splitlines():
        name, size, live, dead, vacuums = line.split("\t")
        tables[name] = {"bytes": int(size), "live": int(live), "dead": int(dead), "autovacuums": int(vacuums)}
    return tables


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=300, help="jobs per second, end to end (default 300: about half the end-to-end peak here)")
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--json", help="write every figure here")
    options = parser.parse_args()

    for product in ("gantryd", "gantry"):
        subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, check=True, stdout=sys.stderr)
    release = ROOT / ".build" / "release"
    with fresh_broker("gantry-soak-") as started:
        port, address = started.port, started.address
        samples = []
        done = threading.Event()

        def sampler():
            started_at = time.monotonic()
            while not done.wait(timeout=max(0, 60 * (len(samples) + 1) - (time.monotonic() - started_at))):
                samples.append(sample(port))

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        command = [str(release / "gantry"), "bench", "--broker", address, "--scenarios", "soak", "--soak-rate", str(options.rate),
                   "--soak-minutes", str(options.minutes), "--json"]
        result = json.loads(subprocess.run(command, check=True, stdout=subprocess.PIPE).stdout)[0]
        done.set()
        thread.join()
        started.stop_broker()
    rates = [float(text) for text in result["note"].split(": ", 1)[1].split(", ")]
    print(f"\n{result['scenario']}: {result['jobs_per_s']:.0f} jobs/s overall, p50 {result['p50_ms']:.1f} ms, "
          f"p99 {result['p99_ms']:.1f} ms\n")
    print("| minute | jobs/s | gantry.jobs size | live | dead | autovacuums | finished_jobs size |")
    print("|---|---|---|---|---|---|---|")
    for minute, (rate, tables) in enumerate(zip(rates, samples), start=1):
        jobs, finished = tables.get("jobs", {}), tables.get("finished_jobs", {})
        print(f"| {minute} | {rate:.0f} | {jobs.get('bytes', 0) / 1e6:.1f} MB | {jobs.get('live', 0)} | {jobs.get('dead', 0)} "
              f"| {jobs.get('autovacuums', 0)} | {finished.get('bytes', 0) / 1e6:.1f} MB |")
    if options.json:
        pathlib.Path(options.json).write_text(json.dumps({"result": result, "rates": rates, "samples": samples}, indent=2))


if __name__ == "__main__":
    main()
