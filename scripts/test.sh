#!/usr/bin/env bash
# The whole test suite: install what is missing, build with ASan/UBSan and -Werror, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh asan >/dev/null
cd build-asan
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
ctest -j"$(nproc)" --output-on-failure --timeout 600 "$@"
