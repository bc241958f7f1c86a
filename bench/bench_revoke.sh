#!/usr/bin/env bash
# Revocation pushed by the CRL watch, on real `node start` processes (release build; never a
# test), and what idle watches cost the NA.
#   1. reach: BENCH_CORE core nodes in a ring plus BENCH_VICTIMS leaf nodes, each linked to two
#      core nodes (50 processes by default), all with NA polling off (--crl-poll-ms -1) and
#      the default CRL watch; gossip stays on. Each victim is revoked in turn; for each
#      revocation, the time from the NA receiving POST /admin/revoke until the last node
#      holds the new CRL and has withdrawn its route to the victim (from the nodes' own log
#      timestamps: crl_updated, route_withdrawn). Prints p50 and p99 over the revocations
#      next to the targets (p50 < 100 ms, p99 < 250 ms).
#   2. idle watches: BENCH_WATCHERS watches held on the NA (GET /crl?after=N&wait=1800 over
#      HTTPS, as nodes hold them) for BENCH_IDLE_S seconds: requests/s the NA handled, its
#      threads and resident memory before and with them.
# Run via bench/run.sh revoke, or with GM_BIN set.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
CORE="${BENCH_CORE:-30}"
VICTIMS="${BENCH_VICTIMS:-20}"
WATCHERS="${BENCH_WATCHERS:-1000}"
IDLE="${BENCH_IDLE_S:-30}"
[ -n "${GM_BIN:-}" ] || GM_BIN="$here/../build-bench/genesis-mesh"
export GM_BIN GM_BUILD="${GM_BUILD:-$(dirname "$GM_BIN")}"
E2E_LOG_LEVEL=info
GM_E2E_TIMEOUT="${GM_E2E_TIMEOUT:-180}"
. "$here/../tests/lib_e2e.sh"
unset ASAN_OPTIONS UBSAN_OPTIONS
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
E2E_NA_CONFIG='{"max_connections_per_ip": 0}'
e2e_na_start >/dev/null 2>&1
NA_LOG="$E2E_NET/na.log"
na_metrics() { curl -sf --cacert "$E2E_NET/tls.crt" "$E2E_NA_URL/metrics"; }
na_metric() { na_metrics | sed -n "s/^$1 //p"; }

# ---- 1. revocation reach (BENCH_IDLE_ONLY=1 skips it) ----
if [ -z "${BENCH_IDLE_ONLY:-}" ]; then
NODE_ARGS=(--crl-poll-ms -1)
for i in $(seq 0 $((CORE - 1))); do e2e_node_join "c$i" "role:core" >/dev/null; done
for k in $(seq 0 $((VICTIMS - 1))); do e2e_node_join "v$k" "role:victim" >/dev/null; done
e2e_node_start c0 "${NODE_ARGS[@]}"
for i in $(seq 1 $((CORE - 1))); do
    peers=(--peer "$(node_addr "c$((i - 1))")")
    [ "$i" = $((CORE - 1)) ] && peers+=(--peer "$(node_addr c0)")
    e2e_node_start "c$i" "${peers[@]}" "${NODE_ARGS[@]}"
done
for k in $(seq 0 $((VICTIMS - 1))); do
    a=$(((2 * k) % CORE)); b=$(((2 * k + CORE / 2) % CORE))
    e2e_node_start "v$k" --peer "$(node_addr "c$a")" --peer "$(node_addr "c$b")" "${NODE_ARGS[@]}"
done
ALL=(); for i in $(seq 0 $((CORE - 1))); do ALL+=("c$i"); done
for k in $(seq 0 $((VICTIMS - 1))); do ALL+=("v$k"); done
N=${#ALL[@]}
full_mesh() {
    local n
    for n in "${ALL[@]}"; do
        [ "$(node_q "$n" 'len([r for r in d["routes"] if r["metric"] < 65535])')" -ge $((N - 1)) ] || return 1
    done
}
wait_until "$E2E_TIMEOUT" "every node routes to every other" full_mesh
wait_until "$E2E_TIMEOUT" "the NA holds every node's watch" eval '[ "$(na_metric gm_na_crl_watchers)" -ge '"$N"' ]'
echo "real-process mesh: $N nodes ($CORE in a ring, $VICTIMS leaves on two of them), NA polling off, CRL watch on"

alive=("${ALL[@]}")
holds_seq() { # SEQ: every node in alive logged crl_updated SEQ
    local n
    for n in "${alive[@]}"; do
        grep -q "\"event\":\"crl_updated\".*\"sequence\":$1," "$(node_dir "$n")/node.log" || return 1
    done
}
withdrawn() { # KEY: every node in alive logged route_withdrawn for KEY, or has no route to it
    local n
    for n in "${alive[@]}"; do
        grep -qF "\"event\":\"route_withdrawn\",\"msg\":\"route_withdrawn\",\"destination\":\"$1\"" \
            "$(node_dir "$n")/node.log" || no_route "$n" "$1" || return 1
    done
}
: >"$E2E_TMP/reach"
for k in $(seq 0 $((VICTIMS - 1))); do
    victim="v$k"
    vkey="$(node_key "$victim")"
    alive=(); for n in "${ALL[@]}"; do
        case "$n" in v*) [ "${n#v}" -le "$k" ] && continue ;; esac
        alive+=("$n")
    done
    out="$(e2e_admin revoke --cert-id "$(node_cert_id "$victim")" --reason key_compromise --json 2>&1)" ||
        fail "revoke $victim: $out"
    seq="$(printf '%s' "$out" | json_q 'd["sequence"]')"
    wait_until "$E2E_TIMEOUT" "every node holds CRL $seq" holds_seq "$seq"
    wait_until "$E2E_TIMEOUT" "every node withdrew its route to $victim" withdrawn "$vkey"
    # from the NA receiving the revocation to the last node holding the CRL with the route gone
    dirs=(); for n in "${alive[@]}"; do dirs+=("$(node_dir "$n")/node.log"); done
    python3 - "$NA_LOG" "$seq" "$vkey" "${dirs[@]}" >>"$E2E_TMP/reach" <<'EOF'
import json, sys, datetime
def ts(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
na_log, seq, vkey, logs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
t0 = None
for line in open(na_log):
    try: e = json.loads(line)
    except ValueError: continue
    m = e.get("msg", "")
    if "POST /admin/revoke -> 200" in m:
        t0 = ts(e["ts"]) - float(m.rsplit(" ", 1)[1].rstrip("ms")) / 1e3  # arrival = answer - its latency
last = 0.0
for path in logs:
    t_crl = t_route = None
    for line in open(path):
        try: e = json.loads(line)
        except ValueError: continue
        if e.get("event") == "crl_updated" and e.get("sequence") == seq and t_crl is None:
            t_crl = ts(e["ts"])
        if e.get("event") == "route_withdrawn" and e.get("destination") == vkey and t_route is None:
            t_route = ts(e["ts"])
    t = max(t_crl, t_route or 0)
    last = max(last, t)
print("%.1f" % ((last - t0) * 1e3))
EOF
    # the next revocation starts once every watch is held again
    wait_until "$E2E_TIMEOUT" "every watch re-armed" eval '[ "$(na_metric gm_na_crl_watchers)" -ge '"${#alive[@]}"' ]'
done
python3 - "$E2E_TMP/reach" <<'EOF'
import sys
v = sorted(float(x) for x in open(sys.argv[1]))
def pct(p): return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
print("revoke -> every node holds the CRL and has no route to the revoked node, %d revocations:" % len(v))
print("  p50 %7.1f ms   target < 100 ms  %s" % (pct(50), "ok" if pct(50) < 100 else "OVER"))
print("  p99 %7.1f ms   target < 250 ms  %s" % (pct(99), "ok" if pct(99) < 250 else "OVER"))
print("  all (ms): " + " ".join("%.0f" % x for x in v))
EOF
# and, asked through the local API, no node routes to any revoked node
for n in "${alive[@]}"; do
    for k in $(seq 0 $((VICTIMS - 1))); do
        no_route "$n" "$(node_key "v$k")" || fail "$n still routes to revoked v$k"
    done
done
echo "  checked: no remaining node routes to any of the $VICTIMS revoked nodes (local API status)"
for n in "${ALL[@]}"; do e2e_node_stop "$n" >/dev/null 2>&1 || true; done
fi

# ---- 2. idle watches ----
na_proc() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$E2E_NA_PID/status"; }
requests_total() { na_metrics | awk '/^gm_na_requests_total\{/ {s += $2} END {print s + 0}'; }
wait_until "$E2E_TIMEOUT" "the nodes' watches are gone" eval '[ "$(na_metric gm_na_crl_watchers)" -eq 0 ]'
T0="$(na_proc Threads)"; R0="$(na_proc VmRSS)"
SEQ="$(e2e_na_crl_sequence)"
python3 - "$E2E_NA_URL" "$E2E_NET/tls.crt" "$SEQ" "$WATCHERS" "$E2E_TMP/idle" <<'EOF' &
import socket, ssl, sys, time, os
url, ca, after, n, flag = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
host, port = url.split("//")[1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca); ctx.check_hostname = False
socks = []
for i in range(n):
    s = socket.create_connection((host, int(port)), timeout=60)
    if url.startswith("https:"): s = ctx.wrap_socket(s)
    s.sendall(("GET /crl?after=%d&wait=1800 HTTP/1.1\r\nHost: %s\r\n\r\n" % (after, host)).encode())
    socks.append(s)
open(flag + ".held", "w").write("%d\n" % n)
while not os.path.exists(flag + ".done"): time.sleep(0.2)
EOF
PYPID=$!
E2E_PIDS+=("$PYPID")
wait_until 300 "$WATCHERS watches held" eval '[ "$(na_metric gm_na_crl_watchers)" -ge '"$WATCHERS"' ]'
Q0="$(requests_total)"; t0="$(date +%s.%N)"
sleep "$IDLE"
Q1="$(requests_total)"; t1="$(date +%s.%N)"
T1="$(na_proc Threads)"; R1="$(na_proc VmRSS)"
touch "$E2E_TMP/idle.done"; wait "$PYPID" || true
python3 - "$WATCHERS" "$IDLE" "$Q0" "$Q1" "$t0" "$t1" "$T0" "$T1" "$R0" "$R1" <<'EOF'
import sys
n, idle = int(sys.argv[1]), sys.argv[2]
q0, q1, t0, t1 = map(float, sys.argv[3:7]); th0, th1, r0, r1 = map(int, sys.argv[7:11])
rate = (q1 - q0 - 1) / (t1 - t0)  # the /metrics read that took Q1 is not the watchers'
print("%d idle CRL watches held on the NA for %s s (HTTPS, wait=1800):" % (n, idle))
print("  requests/s handled       %6.2f   limit <= 1/s  %s  (steady state: %d / 1800 s = %.2f/s, plus one answer each per CRL re-signing, hourly by default)"
      % (rate, "ok" if rate <= 1 else "OVER", n, n / 1800.0))
print("  NA threads               %6d   without watches %d (bounded: the pool does not grow with watches)" % (th1, th0))
print("  NA resident memory       %6.1f MiB  without watches %.1f MiB: %.1f KiB per watch (TLS session included)"
      % (r1 / 1024, r0 / 1024, (r1 - r0) / n))
EOF
e2e_finish >/dev/null 2>&1
