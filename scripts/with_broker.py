#!/usr/bin/env python3
"""Runs a command against a fresh, throwaway broker: gantryd on its own embedded PostgreSQL in a temporary
directory, on free loopback ports. The command gets GANTRY_URL (host:port of the JSON-RPC port) and
GANTRY_HTTP (host:port of the HTTP side); when it ends, the broker and its PostgreSQL are stopped and the
directory removed. The command's exit status is this script's.

Usage: scripts/with_broker.py [--gantryd PATH] -- COMMAND [ARGS...]
       (default gantryd: $GANTRYD, else .build/debug/gantryd beside this script's repository)
"""
import argparse
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gantryd", default=os.environ.get("GANTRYD", str(ROOT / ".build" / "debug" / "gantryd")))
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("give a command to run after --")
    if not os.access(options.gantryd, os.X_OK):
        sys.exit(f"with_broker: no gantryd at {options.gantryd}; build it first (swift build) or pass --gantryd")

    directory = pathlib.Path(tempfile.mkdtemp(prefix="gantry-broker-"))
    os.chmod(directory, 0o755)
    log = open(directory / "gantryd.log", "wb")
    broker = subprocess.Popen(
        [options.gantryd, "--data-dir", str(directory / "data"), "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=log, env={**os.environ, "GANTRY_EXIT_WITH_PID": str(os.getpid())})
    try:
        addresses = {}
        deadline = time.monotonic() + 120
        while len(addresses) < 2:
            line = broker.stdout.readline().decode()
            if not line or time.monotonic() > deadline:
                log.flush()
                sys.exit("with_broker: gantryd did not start:\n" + (directory / "gantryd.log").read_text()[-3000:])
            if line.startswith("gantryd listening on "):
                addresses["GANTRY_URL"] = line.split()[-1]
            elif line.startswith("gantryd http on "):
                addresses["GANTRY_HTTP"] = line.split()[-1]
        print(f"with_broker: gantryd at {addresses['GANTRY_URL']} (HTTP {addresses['GANTRY_HTTP']})", file=sys.stderr, flush=True)
        status = subprocess.call(command, env={**os.environ, **addresses})
    finally:
        broker.send_signal(signal.SIGTERM)
        try:
            broker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()
        shutil.rmtree(directory, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
