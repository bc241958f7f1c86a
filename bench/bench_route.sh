#!/usr/bin/env bash
# Routing on real `node start` processes (release build; never a test): a ring of
# BENCH_MESH_N nodes (each dials the previous one, the last also dials the first).
#   - convergence: from starting the last node to every node routing to every other;
#   - steady-state CPU: user+system CPU of all nodes over BENCH_STEADY_S seconds, per
#     frame received (periodic full route updates every 5 s, heartbeats).
# Nodes run with BENCH_NODE_ARGS (default --crl-poll-ms -1: no NA polling, whose cost, an HTTPS
# handshake per poll since the NA serves TLS, would otherwise dominate the CPU figure and is
# not routing).
# With GM_BIN_BEFORE pointing at a binary built before signed route origins, both binaries
# run and the script prints before, after, ratio and the limit we accept. Medians of
# BENCH_RUNS runs. Run via bench/run.sh route, or with GM_BIN set.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
N="${BENCH_MESH_N:-8}"
RUNS="${BENCH_RUNS:-3}"
STEADY="${BENCH_STEADY_S:-20}"

if [ -z "${BENCH_ONE:-}" ]; then
    [ -n "${GM_BIN:-}" ] || GM_BIN="$here/../build-bench/genesis-mesh"
    measure() { # BIN -> "convergence_s cpu_us_per_frame" medians
        local c=() u=() out
        for _ in $(seq "$RUNS"); do
            out="$(BENCH_ONE=1 GM_BIN="$1" GM_BUILD="$(dirname "$1")" bash "$0" 2>/dev/null | tail -1)"
            c+=("${out% *}"); u+=("${out#* }")
        done
        python3 -c 'import statistics,sys; n=len(sys.argv)//2; print("%.3f %.2f" % (statistics.median(map(float,sys.argv[1:n+1])), statistics.median(map(float,sys.argv[n+1:]))))' "${c[@]}" "${u[@]}"
    }
    after="$(measure "$GM_BIN")"
    echo "real-process ring of $N nodes, medians of $RUNS runs"
    if [ -n "${GM_BIN_BEFORE:-}" ]; then
        before="$(measure "$GM_BIN_BEFORE")"
    else
        before="0 0"
        echo "(GM_BIN_BEFORE not set: no baseline, ratio 0)"
    fi
    python3 - "$before" "$after" <<'PY'
import sys
b = [float(x) for x in sys.argv[1].split()]; a = [float(x) for x in sys.argv[2].split()]
rows = [("convergence after the last node starts", "s", b[0], a[0], 10.0),
        ("steady-state CPU per received frame", "us", b[1], a[1], 500.0)]
for what, unit, before, after, limit in rows:
    ratio = after / before if before else 0
    print("%-40s before %8.3f %-2s after %8.3f %-2s ratio %5.2f  limit %6.1f %-2s %s"
          % (what, before, unit, after, unit, ratio, limit, unit, "ok" if after <= limit else "OVER"))
PY
    exit 0
fi

# ---- one run with $GM_BIN ----
export GM_BIN GM_BUILD
E2E_LOG_LEVEL=warn
GM_E2E_TIMEOUT="${GM_E2E_TIMEOUT:-120}"
. "$here/../tests/lib_e2e.sh"
unset ASAN_OPTIONS UBSAN_OPTIONS
e2e_na_start >/dev/null 2>&1
for i in $(seq 0 $((N - 1))); do e2e_node_join "n$i" "role:n$i"; done
read -r -a node_args <<<"${BENCH_NODE_ARGS---crl-poll-ms -1}"
e2e_node_start n0 "${node_args[@]}"
for i in $(seq 1 $((N - 2))); do e2e_node_start "n$i" --peer "$(node_addr "n$((i - 1))")" "${node_args[@]}"; done
last=$((N - 1))
full_mesh() {
    for i in $(seq 0 $last); do
        [ "$(node_q "n$i" 'len([r for r in d["routes"] if r["metric"] < 65535])')" -ge "$last" ] || return 1
    done
}
t0="$(date +%s.%N)"
e2e_node_start "n$last" --peer "$(node_addr "n$((last - 1))")" --peer "$(node_addr n0)" "${node_args[@]}"
wait_until "$E2E_TIMEOUT" "every node routes to every other" full_mesh
t1="$(date +%s.%N)"
cpu() { local s=0; for i in $(seq 0 $last); do s=$((s + $(awk '{print $14 + $15}' "/proc/${NODE_PID[n$i]}/stat"))); done; echo "$s"; }
frames() { local s=0; for i in $(seq 0 $last); do s=$((s + $(node_metric "n$i" '^frames_in$'))); done; echo "$s"; }
c0="$(cpu)"; f0="$(frames)"
sleep "$STEADY"
c1="$(cpu)"; f1="$(frames)"
hz="$(getconf CLK_TCK)"
python3 -c 'import sys; t0,t1,c0,c1,f0,f1,hz=map(float,sys.argv[1:]); print("%.3f %.2f" % (t1-t0, (c1-c0)/hz*1e6/max(1,f1-f0)))' \
    "$t0" "$t1" "$c0" "$c1" "$f0" "$f1" "$hz"
e2e_finish >/dev/null 2>&1
