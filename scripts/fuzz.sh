#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_*.c) with libFuzzer under ASan+UBSan for SECONDS each
# (default 60), starting from its seed corpus fuzz/corpus/<target>/, and prints per target
# the coverage at start (seeds alone) and at the end (libFuzzer's cov: figure), the speed,
# and whether it found a crash. Crashing inputs are kept in fuzz-artifacts/<target>/;
# inputs that reached new coverage stay in build-fuzz/corpus/<target>/ (copy the useful
# ones into fuzz/corpus/<target>/ by hand; the suite replays that folder). Not part of CI.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs clang with libFuzzer: `scripts/deps.sh fuzz` installs it (the test build does not).
# Environment: GM_FUZZ_BUILD (default build-fuzz), GM_FUZZ_JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
case "$SECS" in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;; esac
shift $(( $# > 0 ? 1 : 0 ))
BUILD="${GM_FUZZ_BUILD:-build-fuzz}"
JOBS="${GM_FUZZ_JOBS:-2}"

CC_FUZZ="$(command -v clang || true)"
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' >"$probe/t.c"
if [ -z "$CC_FUZZ" ] || ! "$CC_FUZZ" -fsanitize=fuzzer,address,undefined "$probe/t.c" -o "$probe/t" 2>"$probe/err"; then
    echo "scripts/fuzz.sh: clang with libFuzzer is needed (${CC_FUZZ:-clang not found}$( [ -s "$probe/err" ] && echo ": $(head -1 "$probe/err")"))." >&2
    echo "Install it with: scripts/deps.sh fuzz" >&2
    exit 2
fi

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    CC="$CC_FUZZ" cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGM_SANITIZE=ON -DGM_FUZZ=ON >/dev/null
fi
if [ "$#" -gt 0 ]; then targets=("$@"); else
    targets=(); for f in fuzz/fuzz_*.c; do n="$(basename "$f" .c)"; [ "$n" = fuzz_driver ] || targets+=("$n"); done
fi
echo "==> building ${targets[*]} in $BUILD" >&2
nice -n 10 cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}" >"$BUILD/fuzz-build.log" 2>&1 ||
    { tail -20 "$BUILD/fuzz-build.log" >&2; exit 1; }

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
declare -a ROWS=()
bad=0
for t in "${targets[@]}"; do
    seeds="fuzz/corpus/$t"
    work="$BUILD/corpus/$t"
    art="fuzz-artifacts/$t"
    mkdir -p "$work" "$art"
    log="$BUILD/fuzz-$t.log"
    nseeds="$(find "$seeds" -type f | wc -l)"
    echo "==> $t: $SECS s from $nseeds seeds" >&2
    rc=0
    "$BUILD/fuzz/$t" -max_total_time="$SECS" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
        -artifact_prefix="$art/" "$work" "$seeds" >"$log" 2>&1 || rc=$?
    start="$(grep -m1 -E 'INITED|DONE' "$log" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')"
    end="$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')"
    speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    if [ "$rc" -eq 0 ]; then verdict="ok"; else
        verdict="CRASH (exit $rc; $(ls "$art" | head -1); see $log)"; bad=1
    fi
    ROWS+=("$t | $nseeds | ${start:-?} | ${end:-?} | ${runs:-?} | ${speed:-?} | $verdict")
done
echo
echo "target | seeds | cov at start | cov at end | runs | exec/s | result"
echo "--- | --- | --- | --- | --- | --- | ---"
printf '%s\n' "${ROWS[@]}"
exit "$bad"
