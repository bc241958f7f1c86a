#!/usr/bin/env bash
# Same-minute A/B of the 1-hop data path between two release builds (never a test): one NA, two
# networks side by side (a1 -> a2 on build A's nodes, b1 -> b2 on build B's), each build's
# bench_pump run on its own pair in turn, BENCH_ROUNDS times, with the 2-pass AEAD limit
# (bench_node_aead) and the bare 1-hop ceiling (bench_tcp_relay hop) measured before each round.
# On a shared machine wall-clock MB/s swings between minutes; CPU per MB compared run by run does
# not. Prints each run, then medians: MB/s, ratio to the limit and to the ceiling, and CPU per MB
# of the sending node, the receiving node and the pump (from /proc/PID/task/*/schedstat).
# Knobs: GM_BUILD_A, GM_BUILD_B (default GM_BUILD, an A/A run: the noise itself), BENCH_ROUNDS (6),
# BENCH_SIZE (60000), BENCH_MB (128), BENCH_SWAP=1 (B runs first in each round).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
GM_BUILD="${GM_BUILD:-$here/../build-bench}"
A="${GM_BUILD_A:-$GM_BUILD}" B="${GM_BUILD_B:-$GM_BUILD}"
GM_BIN="$A/genesis-mesh"
export GM_BIN GM_BUILD="$A"
E2E_LOG_LEVEL=warn # read by lib_e2e.sh
GM_E2E_TIMEOUT="${GM_E2E_TIMEOUT:-900}"
. "$here/../tests/lib_e2e.sh"
unset ASAN_OPTIONS UBSAN_OPTIONS
SIZE="${BENCH_SIZE:-60000}" ROUNDS="${BENCH_ROUNDS:-6}"
N=$(( ${BENCH_MB:-128} * 1000000 / SIZE ))

# Each build's nodes load that build's library (a copied build directory would otherwise load the
# original's through its RUNPATH).
start_pair() { # BUILD FROM TO
    GM_BIN="$1/genesis-mesh" LD_LIBRARY_PATH="$1" e2e_node_start "$2"
    GM_BIN="$1/genesis-mesh" LD_LIBRARY_PATH="$1" e2e_node_start "$3" --peer "$(node_addr "$2")"
    wait_until 60 "$2 routes to $3" has_route "$2" "$(node_key "$3")"
}
e2e_na_start >/dev/null
for x in a1 a2 b1 b2; do e2e_node_join "$x" "role:$x"; done
start_pair "$A" a1 a2
start_pair "$B" b1 b2

cpu() { cat "/proc/$1"/task/*/schedstat | awk '{s += $1} END {printf "%.6f", s / 1e9}'; }
run() { # TAG BUILD FROM TO: "TAG MB/s lost refused snd rcv pump total" (CPU in ms per MB)
    local s0 d0 s1 d1 mbps n failed pcpu
    s0="$(cpu "${NODE_PID[$3]}")" d0="$(cpu "${NODE_PID[$4]}")"
    read -r mbps n _ failed pcpu < <("$2/bench/bench_pump" "$(node_dir "$3")/node.sock" \
        "$(node_dir "$4")/node.sock" "$(node_key "$4")" "$SIZE" "$N")
    s1="$(cpu "${NODE_PID[$3]}")" d1="$(cpu "${NODE_PID[$4]}")"
    python3 -c "
mb = $n * $SIZE / 1e6
s, d, p = 1000 * ($s1 - $s0) / mb, 1000 * ($d1 - $d0) / mb, 1000 * $pcpu / mb
print('$1 %.1f %d %d %.3f %.3f %.3f %.3f' % ($mbps, $N - $n, $failed, s, d, p, s + d + p))"
}
out="$E2E_TMP/pair.runs" # removed with the network by lib_e2e.sh's exit trap
run A "$A" a1 a2 >/dev/null
run B "$B" b1 b2 >/dev/null
echo "A = $A, B = $B; $ROUNDS rounds of $N messages of $SIZE B; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  tag MB/s lost refused | CPU ms per MB: sending node, receiving node, pump, total  (L: AEAD MB/s; C: ceiling MB/s, ms per MB)"
for _ in $(seq 1 "$ROUNDS"); do
    echo "L $("$B/bench/bench_node_aead" "$SIZE")" | tee -a "$out"
    echo "C $("$B/bench/bench_tcp_relay" hop "${BENCH_MB:-128}" "$SIZE" | cut -d' ' -f1-2)" | tee -a "$out"
    if [ "${BENCH_SWAP:-}" = 1 ]; then
        run B "$B" b1 b2 | tee -a "$out"; run A "$A" a1 a2 | tee -a "$out"
    else
        run A "$A" a1 a2 | tee -a "$out"; run B "$B" b1 b2 | tee -a "$out"
    fi
done
echo "load $(cut -d' ' -f1-3 /proc/loadavg); api_overflow at a2 / b2: $(node_metric a2 api_overflow) / $(node_metric b2 api_overflow)"
python3 - "$out" <<'EOF'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
med = lambda xs: st.median(xs) if xs else float("nan")
lim = med([float(r[1]) for r in rows if r[0] == "L"]) / 2
ceil = med([float(r[1]) for r in rows if r[0] == "C"])
ccpu = med([float(r[2]) for r in rows if r[0] == "C"])
print("2-pass limit %.0f MB/s; bare ceiling %.1f MB/s (%.0f%% of it), %.3f ms of CPU per MB" % (lim, ceil, 100 * ceil / lim, ccpu))
for t in ("A", "B"):
    v = [[float(x) for x in r[1:]] for r in rows if r[0] == t]
    m = [med([x[i] for x in v]) for i in range(7)]
    print("%s: %.1f MB/s = %.0f%% of the limit, %.0f%% of the ceiling; lost %d, refused %d; CPU per MB %.3f / %.3f / %.3f = %.3f ms (%.0f%% of the bare path's)"
          % (t, m[0], 100 * m[0] / lim, 100 * m[0] / ceil, sum(x[1] for x in v), sum(x[2] for x in v), m[3], m[4], m[5], m[6], 100 * m[6] / ccpu))
EOF
