#!/usr/bin/env bash
# Runs every benchmark against a release build (never part of the test suite).
# Usage: bench/run.sh [name-filter]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DGM_SANITIZE=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" >/dev/null
export GM_BIN="$PWD/build-bench/genesis-mesh" GM_BUILD="$PWD/build-bench" GM_SOURCE="$PWD"
filter="${1:-}"
for b in build-bench/bench/bench_*; do
  [ -x "$b" ] || continue
  case "$(basename "$b")" in *"$filter"*) ;; *) continue ;; esac
  echo "=== $(basename "$b")"
  "$b"
done
for s in bench/bench_*.sh; do
  [ -f "$s" ] || continue
  case "$(basename "$s")" in *"$filter"*) ;; *) continue ;; esac
  echo "=== $(basename "$s")"
  bash "$s"
done
