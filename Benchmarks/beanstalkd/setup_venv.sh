#!/usr/bin/env bash
# Installs beanstalkd (Debian's package, 1.12 on bookworm) when it is missing, and creates a
# throwaway virtualenv with the Python client for beanstalk_bench.py:
#
#     Benchmarks/beanstalkd/setup_venv.sh [VENV]     # VENV defaults to /tmp/gantry-beanstalkd-venv
#     beanstalkd -l 127.0.0.1 -p 11300 -b /tmp/beanstalk-binlog -f 0 &
#     VENV/bin/python Benchmarks/beanstalkd/beanstalk_bench.py --port 11300
#
# The client is greenstalk (pinned below). An existing VENV is reused.
set -euo pipefail

VENV="${1:-/tmp/gantry-beanstalkd-venv}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GREENSTALK_VERSION=2.1.1

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
if ! command -v beanstalkd >/dev/null 2>&1; then
    echo "beanstalkd is missing; installing it with apt-get" >&2
    $SUDO apt-get update -qq
    # The package's service is not wanted (the benchmark starts its own server), and in a
    # container without an init system it could not start anyway.
    $SUDO apt-get install -y -qq beanstalkd
fi
"$HERE/../make_venv.sh" "$VENV" "greenstalk==$GREENSTALK_VERSION"
"$VENV/bin/python" -c 'import greenstalk; print("greenstalk", getattr(greenstalk, "__version__", "'"$GREENSTALK_VERSION"'"))'
echo "beanstalkd: $(beanstalkd -v)"
echo "run: $VENV/bin/python $HERE/beanstalk_bench.py --port PORT"
