#!/usr/bin/env bash
# Creates a throwaway virtualenv with the peer queue for peer_bench.py:
#
#     Benchmarks/peer/setup_venv.sh [VENV]      # VENV defaults to /tmp/gantry-peer-venv
#     VENV/bin/python Benchmarks/peer/peer_bench.py --dsn postgresql://...
#
# The peer is PgQueuer 1.6.0 with its asyncpg driver (the versions the README's numbers
# come from); constraints.txt pins their dependencies too. An existing VENV is reused.
set -euo pipefail

VENV="${1:-/tmp/gantry-peer-venv}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PGQUEUER_VERSION=1.6.0
ASYNCPG_VERSION=0.32.0

"$HERE/../make_venv.sh" "$VENV" \
    -c "$HERE/constraints.txt" \
    "pgqueuer==$PGQUEUER_VERSION" "asyncpg==$ASYNCPG_VERSION"
"$VENV/bin/python" -c 'import pgqueuer, asyncpg; print("pgqueuer", pgqueuer.__version__, "asyncpg", asyncpg.__version__)'
echo "run: $VENV/bin/python $HERE/peer_bench.py --dsn postgresql://USER@127.0.0.1:PORT/postgres"
