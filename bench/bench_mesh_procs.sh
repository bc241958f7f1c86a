#!/usr/bin/env bash
# Many real `node start` processes on loopback (release build; never a test): BENCH_PROCS_N
# nodes (default 200) enrolled with one NA, started all at once as a tree (node i dials node
# (i-1)/4), watched through their local APIs by bench/mesh_watch.py. Prints:
#   - time to full routes (start of all processes -> every node routes to every other), next to
#     the time until every process is up and answers on its local API (a floor: routing cannot
#     finish before the last process runs);
#   - resident memory per node (mean and max), next to the route tables' preallocation;
#   - revocation reach: for BENCH_REVOKES leaves revoked one after another, the time from the
#     `admin revoke` call to every other node holding the new CRL and no route to the revoked
#     node (median over nodes, p99, max), next to the targets of issue 10 (p50 100 ms, p99 250 ms).
# Nodes run with BENCH_NODE_ARGS (default: none, the node's defaults). Run via
# bench/run.sh mesh_procs, or with GM_BIN set.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
N="${BENCH_PROCS_N:-200}"
REVOKES="${BENCH_REVOKES:-5}"
[ -n "${GM_BIN:-}" ] || GM_BIN="$here/../build-bench/genesis-mesh"
GM_BUILD="${GM_BUILD:-$(dirname "$GM_BIN")}"
export GM_BIN GM_BUILD
E2E_LOG_LEVEL=warn
GM_E2E_TIMEOUT="${GM_E2E_TIMEOUT:-300}"
. "$here/../tests/lib_e2e.sh"
unset ASAN_OPTIONS UBSAN_OPTIONS
ulimit -n 65536 2>/dev/null || true
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# Every node comes from 127.0.0.1 here, as no real network would: the NA's per-address limits
# (connections, request rates) are lifted so that they do not stand for N machines' worth.
E2E_NA_CONFIG="${E2E_NA_CONFIG:-{\"max_connections_per_ip\": 0, \"rate_limit\": {\"per_ip_per_s\": 0, \"reads_per_ip_per_s\": 0}}}"
e2e_na_start >/dev/null 2>&1
echo "enrolling $N nodes..."
for i in $(seq 0 $((N - 1))); do e2e_node_join "n$i" "role:member"; done
read -r -a ports <<<"$($PY - "$N" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)"
read -r -a node_args <<<"${BENCH_NODE_ARGS:-}"

t0="$(date +%s.%N)"
for i in $(seq 0 $((N - 1))); do
    d="$(node_dir "n$i")"
    peer=()
    [ "$i" -gt 0 ] && peer=(--peer "127.0.0.1:${ports[$(((i - 1) / 4))]}")
    "$GM_BIN" node start --dir "$d" --listen "127.0.0.1:${ports[$i]}" --log "$d/node.log" \
        --log-level warn "${peer[@]}" "${node_args[@]}" >>"$d/node.out" 2>&1 &
    NODE_PID[n$i]=$!
    E2E_PIDS+=("$!")
done
socks=()
for i in $(seq 0 $((N - 1))); do socks+=("$(node_dir "n$i")/node.sock"); done
all_up() { for s in "${socks[@]}"; do [ -S "$s" ] || return 1; done; }
wait_until "$E2E_TIMEOUT" "every node's local API is up" all_up
t_up="$($PY -c 'import sys, time; print("%.3f" % (time.time() - float(sys.argv[1])))' "$t0")"
read -r r50 r99 rmax <<<"$($PY "$here/mesh_watch.py" routes "$t0" "$E2E_TIMEOUT" "$N" "${socks[@]}")"

rss_kb=()
for i in $(seq 0 $((N - 1))); do rss_kb+=("$(awk '/^VmRSS/ {print $2}' "/proc/${NODE_PID[n$i]}/status")"); done
read -r rss_mean rss_max <<<"$($PY -c 'import sys; v=[int(x) for x in sys.argv[1:]]; print("%.1f %.1f" % (sum(v)/len(v)/1024, max(v)/1024))' "${rss_kb[@]}")"

rev=()
for k in $(seq 1 "$REVOKES"); do
    victim="n$((N - k))"
    key="$(node_key "$victim")"
    others=()
    for i in $(seq 0 $((N - 1 - k))); do others+=("$(node_dir "n$i")/node.sock"); done
    seq_before="$(e2e_na_crl_sequence)"
    tr="$(date +%s.%N)"
    e2e_admin revoke --cert-id "$(node_cert_id "$victim")" --reason cessation_of_operation >/dev/null
    rev+=("$($PY "$here/mesh_watch.py" revoked "$tr" "$E2E_TIMEOUT" "$((seq_before + 1))" "$key" "${others[@]}")")
    kill "${NODE_PID[$victim]}" 2>/dev/null || true
done

echo "real-process mesh: $N node processes on loopback, a tree of fan-out 4, args: ${node_args[*]:-(defaults)}"
$PY - "$N" "$t_up" "$r50" "$r99" "$rmax" "$rss_mean" "$rss_max" "${rev[@]}" <<'EOF'
import sys
n, t_up, r50, r99, rmax, rss_mean, rss_max = sys.argv[1:8]
t_up, r50, r99, rmax, rss_mean, rss_max = map(float, (t_up, r50, r99, rmax, rss_mean, rss_max))
print("%-46s %8.3f s   floor %8.3f s (all %s processes up)  ratio %5.2f" % ("time to full routes (last node)", rmax, t_up, n, rmax / t_up))
print("%-46s %8.3f s   p99 %8.3f s" % ("time to full routes (median node)", r50, r99))
print("%-46s %8.1f MB  max %6.1f MB   preallocated route tables ~4.0 MB  ratio %5.2f" % ("resident memory per node", rss_mean, rss_max, rss_mean / 4.0))
meds, p99s, maxs = [], [], []
for i, r in enumerate(sys.argv[8:]):
    a, b, c = map(float, r.split())
    meds.append(a); p99s.append(b); maxs.append(c)
    print("revocation %d: every other node has the CRL and no route  median %7.1f ms  p99 %7.1f ms  max %7.1f ms" % (i + 1, a * 1e3, b * 1e3, c * 1e3))
if meds:
    meds.sort(); p99s.sort()
    m = meds[len(meds) // 2]; p = p99s[len(p99s) // 2]
    print("%-46s p50 %7.1f ms (target 100, ratio %5.2f)  p99 %7.1f ms (target 250, ratio %5.2f)" % ("revocation reach, median of revocations", m * 1e3, m * 1e3 / 100, p * 1e3, p * 1e3 / 250))
EOF
e2e_finish >/dev/null 2>&1
