#!/usr/bin/env bash
# Node runtime figures on real `node start` processes (release build; never a test):
#   1. data throughput over one hop and two hops, sent through the local API, next to the
#      ChaCha20-Poly1305 ceiling measured in the same run (bench_node_aead), the ceiling of one
#      hop in bare programs (bench_tcp_relay hop) and of a relay over TCP (bench_tcp_relay);
#   2. memory per idle peer session: RSS of a hub with N idle peers vs none;
#   3. revocation propagation: from `admin revoke` returning to the last node having no
#      route to the revoked identity, on the 4-agent star and on a tree of BENCH_TREE_N
#      nodes (the default CRL watch, and with the watch at t0 only and gossip beyond it).
# Medians of BENCH_RUNS runs. Knobs: BENCH_RUNS (3), BENCH_PEERS (50), BENCH_TREE_N (50),
# BENCH_MB (64), BENCH_ONLY (throughput|memory|revocation), BENCH_PUMP (c|python). Run via
# bench/run.sh node, or directly with GM_BIN pointing to a release build.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ -z "${GM_BIN:-}" ]; then
    GM_BUILD="${GM_BUILD:-$here/../build-bench}"
    GM_BIN="$GM_BUILD/genesis-mesh"
fi
GM_BUILD="${GM_BUILD:-$(dirname "$GM_BIN")}"
export GM_BIN GM_BUILD
E2E_LOG_LEVEL=warn
GM_E2E_TIMEOUT="${GM_E2E_TIMEOUT:-120}"
. "$here/../tests/lib_e2e.sh"
unset ASAN_OPTIONS UBSAN_OPTIONS

RUNS="${BENCH_RUNS:-3}"
PEERS="${BENCH_PEERS:-50}"
TREE_N="${BENCH_TREE_N:-50}"
MB="${BENCH_MB:-64}"
ONLY="${BENCH_ONLY:-}"
AEAD="$GM_BUILD/bench/bench_node_aead"
TCP_RELAY="$GM_BUILD/bench/bench_tcp_relay"

median() { python3 -c 'import statistics, sys; print("%.1f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
median3() { python3 -c 'import statistics, sys; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

# pump FROM TO SIZE COUNT: sends COUNT messages of SIZE bytes FROM -> TO through the local
# API as binary frames (docs/local-api.md "Binary frames"; the node slows the sender down when
# the path is congested), while a frames subscriber on TO counts them: bench_pump, a C program
# on the public API (pipelined gm_node_conn_post, gm_node_conn_post_flush), or with
# BENCH_PUMP=python the Python client of the tests (tests/api_frames_client.py pump).
# Prints "MB/s received sent send_failed cpu_s" (payload bytes, first to last message received;
# the pump's own CPU seconds).
pump() {
    if [ "${BENCH_PUMP:-c}" = python ]; then
        python3 "$here/../tests/api_frames_client.py" pump "$(node_dir "$1")/node.sock" "$(node_dir "$2")/node.sock" \
            "$(node_key "$2")" "$3" "$4"
    else
        "$GM_BUILD/bench/bench_pump" "$(node_dir "$1")/node.sock" "$(node_dir "$2")/node.sock" "$(node_key "$2")" "$3" "$4"
    fi
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# ------------------------------------------------------------------ network
# Every node here reaches the NA from 127.0.0.1 and holds a CRL watch plus kept-alive GETs, so the
# default max_connections_per_ip (64) would refuse the 50-node tree's later nodes.
E2E_NA_CONFIG='{"max_connections_per_ip": 0}'
e2e_na_start
for a in supervisor finance crm support; do e2e_node_join "$a" "role:$a"; done
e2e_node_start supervisor
SUP_ADDR="$(node_addr supervisor)"
for a in finance crm support; do e2e_node_start "$a" --peer "$SUP_ADDR"; done
for a in finance crm support; do
    wait_until 60 "supervisor routes to $a" has_route supervisor "$(node_key "$a")"
done
wait_until 60 "finance routes to crm" has_route finance "$(node_key crm)" "$(node_key supervisor)" 2
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $RUNS runs per figure"

# ------------------------------------------------------------------ 1. throughput
# CPU seconds a process has used so far: the nanoseconds on CPU of each of its threads
# (/proc/PID/task/*/schedstat), not /proc/PID/stat's 10 ms ticks, which over a run of a tenth of
# a second moved a MB-per-CPU-second figure in steps of 7 %; ticks where schedstat is missing.
cpu_s() {
    if [ -r "/proc/$1/schedstat" ]; then
        cat "/proc/$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.6f\n", s / 1e9}'
    else
        awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
    fi
}

if want throughput; then
    echo
    echo "== throughput through the local API, binary frames (payload MB/s, median of $RUNS)"
    printf '  %-40s %9s %9s %6s %9s %7s %s\n' "" measured "limit" ratio lost api_overflow "MB per CPU-second: sender / relay / receiver / pump"
    for size in 60000 1024; do
        aead="$("$AEAD" "$size")"
        count=$(( MB * 1000000 / size )); [ "$size" -lt 10000 ] && count=$(( count / 8 ))
        for hops in 1 2; do
            if [ "$hops" = 1 ]; then from=supervisor relay="" to=finance div=2 label="1 hop (supervisor -> finance)"
            else from=finance relay=supervisor to=crm div=3 label="2 hops (finance -> supervisor -> crm)"; fi
            vals=() lost=0 eff_s=() eff_r=() eff_d=() eff_p=() cpu_mb=() ceils=() ceil_cpu=()
            ov0="$(node_metric "$to" api_overflow)"
            for r in $(seq 1 "$RUNS"); do
                c0s="$(cpu_s "${NODE_PID[$from]}")" c0d="$(cpu_s "${NODE_PID[$to]}")"
                c0r="$( [ -n "$relay" ] && cpu_s "${NODE_PID[$relay]}" || echo 0)"
                read -r mbps n sent failed pcpu < <(pump "$from" "$to" "$size" "$count")
                c1s="$(cpu_s "${NODE_PID[$from]}")" c1d="$(cpu_s "${NODE_PID[$to]}")"
                c1r="$( [ -n "$relay" ] && cpu_s "${NODE_PID[$relay]}" || echo 0)"
                mb="$(python3 -c "print($n * $size / 1e6)")"
                eff_s+=("$(python3 -c "print($mb / max($c1s - $c0s, 1e-9))")")
                eff_d+=("$(python3 -c "print($mb / max($c1d - $c0d, 1e-9))")")
                eff_p+=("$(python3 -c "print($mb / max($pcpu, 1e-9))")")
                [ -n "$relay" ] && eff_r+=("$(python3 -c "print($mb / max($c1r - $c0r, 1e-9))")")
                # CPU of the whole path (nodes and pump) per MB, in ms.
                cpu_mb+=("$(python3 -c "print(1000 * ($c1s - $c0s + $c1d - $c0d + $c1r - $c0r + $pcpu) / $mb)")")
                vals+=("$mbps")
                lost=$(( lost + count - n ))
                [ "$failed" = 0 ] || echo "  run $r: $failed sends refused (reported to the sender)"
                if [ -z "$relay" ] && [ -x "$TCP_RELAY" ]; then
                    # The most one hop can do here, right after it: the same processes, socket
                    # crossings and 4 AEAD passes in bare programs (bench_tcp_relay hop).
                    read -r c cc _ < <("$TCP_RELAY" hop 128 "$size")
                    ceils+=("$c") ceil_cpu+=("$cc")
                fi
            done
            ov="$(( $(node_metric "$to" api_overflow) - ov0 ))"
            m="$(median "${vals[@]}")"
            limit=$(( aead / div ))
            printf '  %-40s %9s %9s %5.0f%% %9s %7s %6.0f / %5s / %5.0f / %5.0f\n' "$label, $size B" "$m" "$limit" \
                "$(python3 -c "print(100*$m/$limit)")" "$lost/$((count * RUNS))" "$ov" "$(median "${eff_s[@]}")" \
                "$( [ -n "$relay" ] && median "${eff_r[@]}" || echo -)" "$(median "${eff_d[@]}")" "$(median "${eff_p[@]}")"
            if [ -z "$relay" ] && [ -x "$TCP_RELAY" ]; then
                ceil="$(median "${ceils[@]}")" cc="$(median3 "${ceil_cpu[@]}")" ours="$(median3 "${cpu_mb[@]}")"
                printf '  %-40s %9s %9s %5.0f%%   (bare sender -> 2 AEAD passes -> TCP -> 2 passes -> receiver, 4 processes;\n' \
                    "1 hop ceiling, $size B" "$ceil" "$limit" "$(python3 -c "print(100*$ceil/$limit)")"
                printf '  %-40s %9s %9s %6s   %s ms of CPU per MB, so at most %.0f MB/s on %s cores; the nodes and the pump\n' \
                    "" "" "" "" "$cc" "$(python3 -c "print($(nproc) * 1000 / $cc)")" "$(nproc)"
                printf '  %-40s %9s %9s %6s   use %s ms per MB (%.0f%% of the bare path'"'"'s); 1 hop reaches %.0f%% of the ceiling)\n' \
                    "" "" "" "" "$ours" "$(python3 -c "print(100*$ours/$cc)")" "$(python3 -c "print(100*$m/$ceil)")"
            fi
            if [ -n "$relay" ]; then
                rm_="$(median "${eff_r[@]}")"
                printf '  %-40s %9s %9s %5.0f%%   (MB per CPU-second of the relay vs 2 AEAD passes)\n' \
                    "relay, $size B" "$rm_" "$(( aead / 2 ))" "$(python3 -c "print(100*$rm_/($aead/2))")"
                if [ "$size" -ge 10000 ] && [ -x "$TCP_RELAY" ]; then
                    # What TCP on loopback alone costs a relay here (no crypto, no framing), measured
                    # now: no relay over TCP can do better than 2 AEAD passes plus that per byte.
                    floors=()
                    for r in $(seq 1 "$RUNS"); do floors+=("$("$TCP_RELAY" 128 "$size" | awk '{print $1}')"); done
                    floor="$(median3 "${floors[@]}")"
                    ceil="$(python3 -c "print(1 / (2 / $aead + $floor / 1000))")"
                    printf '  %-40s %9.1f %9s %5.0f%%   (a bare TCP relay costs %s ms of CPU per MB here: the most any relay\n' \
                        "relay ceiling over TCP, $size B" "$ceil" "$(( aead / 2 ))" "$(python3 -c "print(100*$ceil/($aead/2))")" "$floor"
                    printf '  %-40s %9s %9s %6s   over TCP can do is 1 / (2 AEAD passes + that); the relay reaches %.0f%% of it)\n' \
                        "" "" "" "" "$(python3 -c "print(100*$rm_/$ceil)")"
                fi
            fi
        done
    done
    echo "  limit: one ChaCha20-Poly1305 pass (bench_node_aead, measured now: ${aead} MB/s at 1 KiB) divided by the"
    echo "  passes per core: 1 hop = 4 passes (e2e + link on each side) on 2 cores (the 2-pass limit); 2 hops = 6"
    echo "  passes on 2 cores (the 3-pass limit). A relay needs 2 passes per byte (link decrypt + encrypt)."
    echo "  1 hop ceiling: the same path in bare programs (bench_tcp_relay hop: 4 processes, the same sockets,"
    echo "  buffers and 4 AEAD passes, nothing else), run after each 1-hop run; its MB/s after the first eighth."
    echo "  lost: messages sent and not received (all runs); api_overflow: subscribers cut off at the receiver."
    echo "  pump: the benchmark's sender and subscriber together (BENCH_PUMP=${BENCH_PUMP:-c}), on the same 2 cores."
    for a in supervisor finance crm; do
        node_q "$a" '{k: v for k, v in d["metrics"].items() if ("drop" in k or "dropped" in k or k in ("api_paused", "api_held", "api_send_failed", "api_overflow")) and v}' |
            grep -v '^{}$' | sed "s/^/  drops and backpressure at $a: /" || true
    done
fi

# ------------------------------------------------------------------ 2. memory per peer
if want memory; then
    echo
    echo "== memory per idle peer session ($PEERS peers, median of $RUNS)"
    e2e_node_join hub role:hub
    for i in $(seq 1 "$PEERS"); do e2e_node_join "leaf$i" role:leaf; done
    per=() base=() full=()
    for r in $(seq 1 "$RUNS"); do
        e2e_node_start hub
        HUB_ADDR="$(node_addr hub)"
        wait_until 60 "hub settled" node_running hub
        r0="$(rss_kib "${NODE_PID[hub]}")"
        for i in $(seq 1 "$PEERS"); do e2e_node_start "leaf$i" --peer "$HUB_ADDR"; done
        wait_until 120 "hub has $PEERS peers" peer_count_is hub "$PEERS"
        wait_until 120 "hub routes to all leaves" node_ok hub 'len([x for x in d["routes"] if x["metric"] < 65535]) >= int(a[0])' "$PEERS"
        # Let one full routing round pass so every table and buffer has been used.
        sleep 12
        r1="$(rss_kib "${NODE_PID[hub]}")"
        base+=("$r0"); full+=("$r1")
        per+=("$(python3 -c "print(($r1 - $r0) / $PEERS)")")
        for i in $(seq 1 "$PEERS"); do e2e_node_stop "leaf$i" || true; done
        e2e_node_stop hub || true
    done
    printf '  hub RSS with 0 peers      %8s KiB\n' "$(median "${base[@]}")"
    printf '  hub RSS with %-3s peers    %8s KiB\n' "$PEERS" "$(median "${full[@]}")"
    printf '  per idle peer session     %8s KiB  (link + Noise state + frame reader + route + certificate)\n' "$(median "${per[@]}")"
fi

# ------------------------------------------------------------------ 3. revocation propagation
# revoke_and_time NAME NODES...: revokes NAME, prints seconds from `admin revoke` returning
# until none of NODES has a route to NAME (polled continuously over the local API).
revoke_and_time() {
    local victim="$1"; shift
    local socks=() a
    for a in "$@"; do socks+=("$(node_dir "$a")/node.sock"); done
    python3 - "$(node_key "$victim")" "$(node_cert_id "$victim")" "$GM_BIN" "$E2E_NET" "$E2E_NA_URL" "${socks[@]}" <<'EOF'
import json, socket, subprocess, sys, time
key, cert, gm, net, url = sys.argv[1:6]
socks = sys.argv[6:]
def routes(path):
    s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(path)
    s.sendall(b'{"op":"routes"}\n'); buf = b""
    while not buf.endswith(b"\n"):
        c = s.recv(1 << 20)
        if not c: break
        buf += c
    s.close()
    return json.loads(buf)["routes"]
def reaches(path):
    return any(r["destination"] == key and r["metric"] < 65535 for r in routes(path))
missing = [p for p in socks if not reaches(p)]
if missing:
    sys.exit("before the revocation, no route to the victim at: %s" % missing)
subprocess.run([gm, "admin", "revoke", "--cert-id", cert, "--reason", "superseded", "--dir", net, "--na", url],
               check=True, stdout=subprocess.DEVNULL)
t0 = time.monotonic()
left = set(socks)
deadline = t0 + 120
while left and time.monotonic() < deadline:
    for p in list(left):
        if not reaches(p):
            left.discard(p)
if left:
    sys.exit("still routing to the revoked node after 120 s: %d nodes" % len(left))
print("%.3f" % (time.monotonic() - t0))
EOF
}

if want revocation; then
    echo
    echo "== revocation propagation: admin revoke returned -> last node without a route (s, median of $RUNS)"
    # 4-agent star: revoke a leaf, rejoin it (superseded: a new invite is enough), repeat.
    vals=()
    for r in $(seq 1 "$RUNS"); do
        vals+=("$(revoke_and_time crm supervisor finance support)")
        e2e_node_stop crm || true
        e2e_node_join crm role:crm
        e2e_node_start crm --peer "$SUP_ADDR"
        wait_until 60 "finance routes to the rejoined crm" has_route finance "$(node_key crm)"
    done
    printf '  %-44s %8s  (runs: %s)\n' "4 agents, star, CRL watch (default)" "$(median3 "${vals[@]}")" "${vals[*]}"

    # Tree of TREE_N nodes: node i dials node (i-1)/2 (binary tree, depth ~log2 N).
    # tree_run POLL_ARGS_FOR_NON_ROOT: sets TREE_MEDIAN and TREE_RUNS over RUNS victims (leaves).
    # Runs in this shell (not in a $(...) subshell) so the exit trap knows every node it started.
    tree_run() {
        local extra="$1" i parent vs=() victim nodes
        for i in $(seq 0 $((TREE_N - 1))); do
            [ -d "$(node_dir "t$i")" ] || e2e_node_join "t$i" role:tree
        done
        e2e_node_start t0
        for i in $(seq 1 $((TREE_N - 1))); do
            parent=$(( (i - 1) / 2 ))
            # shellcheck disable=SC2086
            e2e_node_start "t$i" --peer "$(node_addr "t$parent")" $extra
        done
        for r in $(seq 1 "$RUNS"); do
            victim="t$((TREE_N - r))"
            nodes=()
            # Alive nodes other than this victim (earlier victims were stopped).
            for i in $(seq 0 $((TREE_N - 1 - r))); do nodes+=("t$i"); done
            wait_until 300 "t0 routes to all $TREE_N tree nodes" node_ok t0 \
                'len([x for x in d["routes"] if x["metric"] < 65535]) >= int(a[0]) - 1' "$((TREE_N - r + 1))"
            for i in 1 $((TREE_N / 2)) $((TREE_N - 1 - RUNS)); do
                wait_until 300 "t$i routes to $victim" has_route "t$i" "$(node_key "$victim")"
            done
            vs+=("$(revoke_and_time "$victim" "${nodes[@]}")")
            e2e_node_stop "$victim" || true
        done
        for i in $(seq 0 $((TREE_N - 1))); do e2e_node_stop "t$i" || true; rm -rf "$(node_dir "t$i")"; done
        TREE_MEDIAN="$(median3 "${vs[@]}")" TREE_RUNS="${vs[*]}"
    }
    tree_run ""
    printf '  %-44s %8s  (runs: %s)\n' "$TREE_N nodes, binary tree, CRL watch (default)" "$TREE_MEDIAN" "$TREE_RUNS"
    tree_run "--crl-poll-ms 3600000 --crl-watch-s -1"
    printf '  %-44s %8s  (runs: %s)\n' "$TREE_N nodes, tree, watch at t0, gossip beyond" "$TREE_MEDIAN" "$TREE_RUNS"
fi
