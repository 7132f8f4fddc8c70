#!/usr/bin/env bash
# Creates a throwaway virtualenv for the naive reference server (server.py):
#
#     Benchmarks/reference/setup_venv.sh [VENV]      # VENV defaults to /tmp/gantry-reference-venv
#     VENV/bin/python Benchmarks/reference/server.py --dsn postgresql://USER@127.0.0.1:PORT/gantry
#
# asyncpg and uvloop are pinned to the versions the peer benchmark (Benchmarks/peer) uses, so the
# reference and PgQueuer talk to PostgreSQL through the same driver. An existing VENV is reused.
set -euo pipefail

VENV="${1:-/tmp/gantry-reference-venv}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ASYNCPG_VERSION=0.32.0
UVLOOP_VERSION=0.23.0

"$HERE/../make_venv.sh" "$VENV" \
    "asyncpg==$ASYNCPG_VERSION" "uvloop==$UVLOOP_VERSION"
"$VENV/bin/python" -c 'import asyncpg, uvloop; print("asyncpg", asyncpg.__version__, "uvloop", uvloop.__version__)'
echo "run: $VENV/bin/python $HERE/server.py --dsn postgresql://USER@127.0.0.1:PORT/gantry"
