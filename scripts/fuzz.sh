#!/usr/bin/env bash
# Fuzzes the broker's line reader and params decoding with libFuzzer (Fuzz/LineReader/LineReaderFuzz.swift):
#   scripts/fuzz.sh                 runs until stopped (or -runs=N, -max_total_time=S, any libFuzzer flag)
#   scripts/fuzz.sh -runs=10000000  the count the closing notes report
# The corpus grows in .build-fuzz/corpus, seeded from Fuzz/LineReader/seeds; a crash or a disagreement between
# the readers leaves its input in .build-fuzz/ as crash-*, which `gantry-fuzz-lines FILE` (a plain build) replays.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product gantry-fuzz-lines --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING -Xswiftc -use-ld=lld >&2
mkdir -p .build-fuzz/corpus
# libFuzzer, not Swift's backtracer, handles a crash, so that the input is saved as crash-*.
export SWIFT_BACKTRACE=enable=no
cd .build-fuzz
exec ./release/gantry-fuzz-lines -max_len=4096 -dict=../Fuzz/LineReader/json.dict "$@" corpus ../Fuzz/LineReader/seeds
