#!/usr/bin/env bash
# Makes (or reuses) a throwaway virtualenv and pip-installs into it; the benchmarks' setup_venv.sh scripts call
# it with their pinned packages:
#
#     Benchmarks/make_venv.sh VENV PIP_INSTALL_ARGUMENTS...
#
# Installs Debian's python3-venv first when the machine lacks it.
set -euo pipefail

VENV="$1"
shift
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "python3-venv is missing; installing it with apt-get" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq python3-venv
fi
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
