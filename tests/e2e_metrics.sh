#!/usr/bin/env bash
# Every Prometheus exposition, parsed strictly by an independent parser from npm
# (tests/js/check_prometheus.js: parse-prometheus-text-format, plus our own checks of the text
# format, # HELP / # TYPE on every family, unit suffixes and histogram consistency): the NA's
# GET /metrics (with its latency histograms per endpoint, key/TLS/CRL expiry gauges and
# build_info), a node's --metrics-listen endpoint and its {"op":"metrics"} text. The checker
# itself is shown to refuse bad expositions (so it can fail). The node's listener is bounded:
# only GET/HEAD /metrics (404, 405 otherwise), a request head over 4 KiB is refused (431), more than
# 16 connections at once are closed, and the node keeps serving throughout.
# Needs node (JavaScript) and the npm packages of tests/js (scripts/deps.sh installs them).
. "$(dirname "$0")/lib_e2e.sh"
JS="$(cd "$(dirname "$0")/js" && pwd)"
command -v node >/dev/null || { echo "SKIP: node (JavaScript) is not installed" >&2; exit 77; }
[ -d "$JS/node_modules/parse-prometheus-text-format" ] ||
    fail "tests/js/node_modules is missing: run scripts/deps.sh (npm ci in tests/js)"
checker() { node "$JS/check_prometheus.js" "$@"; }

step "the checker refuses bad expositions"
bad() { # bad NAME TEXT ERE: the checker must exit 1 and say ERE
    printf '%b' "$2" >"$E2E_TMP/bad-$1.prom"
    local rc=0
    checker "$E2E_TMP/bad-$1.prom" >"$E2E_TMP/bad.out" 2>&1 || rc=$?
    [ "$rc" = 1 ] || fail "checker accepted $1 (exit $rc): $(cat "$E2E_TMP/bad.out")"
    grep -qE -e "$3" "$E2E_TMP/bad.out" || fail "checker on $1 does not say /$3/: $(cat "$E2E_TMP/bad.out")"
}
bad nohelp '# TYPE a_total counter\na_total 1\n' 'no # HELP'
bad notype '# HELP a_total x\na_total 1\n' 'no # TYPE|no TYPE'
bad counter_suffix '# HELP a x\n# TYPE a counter\na 1\n' 'must end in _total'
bad gauge_total '# HELP a_total x\n# TYPE a_total gauge\na_total 1\n' 'must not end in _total'
bad bytes '# HELP gm_bytes_in_total x\n# TYPE gm_bytes_in_total counter\ngm_bytes_in_total 1\n' '_bytes'
bad millis '# HELP lat_ms x\n# TYPE lat_ms gauge\nlat_ms 1\n' '_seconds'
bad value '# HELP a_total x\n# TYPE a_total counter\na_total 1,5\n' 'not a float|refuses'
bad dup '# HELP a_total x\n# TYPE a_total counter\na_total{k="v"} 1\na_total{k="v"} 2\n' 'duplicate series'
bad stray '# HELP a_total x\n# TYPE a_total counter\na_total 1\nb 2\n' 'not of family'
bad label '# HELP a_total x\n# TYPE a_total counter\na_total{k=v} 1\n' 'not quoted|refuses'
bad nonl '# HELP a_total x\n# TYPE a_total counter\na_total 1' 'newline'
bad histo '# HELP d_seconds x\n# TYPE d_seconds histogram\nd_seconds_bucket{le="1"} 5\nd_seconds_bucket{le="+Inf"} 4\nd_seconds_sum 1\nd_seconds_count 4\n' 'not cumulative'
bad histo_count '# HELP d_seconds x\n# TYPE d_seconds histogram\nd_seconds_bucket{le="+Inf"} 4\nd_seconds_sum 1\nd_seconds_count 5\n' '!= _count'
printf '# HELP ok_total fine\n# TYPE ok_total counter\nok_total{a="x\\\\y\\"z"} 1\n' >"$E2E_TMP/good.prom"
checker "$E2E_TMP/good.prom" >/dev/null || fail "checker refused a good exposition: $(checker "$E2E_TMP/good.prom")"
log "ok - the checker refuses 13 bad expositions and accepts a good one"

step "a network: the NA, a node with --metrics-listen and a peer"
e2e_na_start
e2e_node_join a role:a
e2e_node_join b role:b
A="$(node_dir a)"
e2e_node_start a --metrics-listen 127.0.0.1:0 --metrics-port-file "$A/metrics.port"
e2e_node_start b --peer "$(node_addr a)"
wait_until "$E2E_TIMEOUT" "a and b are linked" has_peer a "$(node_key b)"
MURL="http://127.0.0.1:$(tr -d '[:space:]' <"$A/metrics.port")/metrics"
# some traffic of every kind for the NA's counters and histograms (a 404 lands in "other")
curl -s -o /dev/null --cacert "$E2E_NET/tls.crt" "$E2E_NA_URL/no-such-endpoint"
curl -s -o /dev/null --cacert "$E2E_NET/tls.crt" "$E2E_NA_URL/ready"
e2e_node_join c role:c # enrolled, never started: its revocation leaves the a-b link alone
e2e_admin revoke --cert-id "$(node_cert_id c)" --reason superseded >/dev/null 2>&1 || fail "revoke"

step "every exposition passes the strict check"
curl -sS --cacert "$E2E_NET/tls.crt" "$E2E_NA_URL/metrics" >"$E2E_TMP/na.prom" || fail "GET /metrics on the NA"
curl -sS "$MURL" >"$E2E_TMP/node.prom" || fail "GET $MURL"
API_TEXT="$(node_api a '{"op":"metrics"}' | json_q 'd["text"]')" || fail "the metrics op"
printf '%s\n' "$API_TEXT" >"$E2E_TMP/node-api.prom"
checker "$E2E_TMP/na.prom" \
    --require gm_na_requests_total --require gm_na_request_duration_seconds \
    --require gm_na_key_expiry_timestamp_seconds --require gm_na_tls_cert_expiry_timestamp_seconds \
    --require gm_na_crl_next_update_timestamp_seconds --require genesis_mesh_build_info >"$E2E_TMP/check.out" 2>&1 ||
    fail "the NA's /metrics: $(cat "$E2E_TMP/check.out")"
log "$(cat "$E2E_TMP/check.out")"
for f in node node-api; do
    checker "$E2E_TMP/$f.prom" --require gm_node_received_bytes_total --require gm_node_sent_bytes_total \
        --require gm_node_crl_stale --require gm_node_peers --require gm_node_cert_expiry_timestamp_seconds \
        --require genesis_mesh_build_info >"$E2E_TMP/check.out" 2>&1 || fail "the node's $f metrics: $(cat "$E2E_TMP/check.out")"
    log "$(cat "$E2E_TMP/check.out")"
done

step "what the expositions say is true"
grep -q '^gm_na_request_duration_seconds_count{method="any",endpoint="other"} 1$' "$E2E_TMP/na.prom" ||
    fail "the 404 is not in the 'other' histogram: $(grep duration_seconds_count "$E2E_TMP/na.prom")"
grep -q '^gm_na_request_duration_seconds_bucket{method="POST",endpoint="/admin/revoke",le="+Inf"} 1$' "$E2E_TMP/na.prom" ||
    fail "the revocation is not in the /admin/revoke histogram"
# the endpoint label comes from the routing table: a bounded set, never a raw path
grep -o 'endpoint="[^"]*"' "$E2E_TMP/na.prom" | sort -u | grep -v -e '"other"' -e '"/[a-z/-]*"' &&
    fail "an endpoint label is not a route pattern"
NA_TO="$(python3 - "$E2E_NET/genesis.json" <<'EOF'
import datetime, json, sys
g = json.load(open(sys.argv[1]))
t = g["network_authority"]["valid_to"].replace("Z", "+00:00")
print(int(datetime.datetime.fromisoformat(t).timestamp()))
EOF
)"
grep -q "^gm_na_key_expiry_timestamp_seconds $NA_TO$" "$E2E_TMP/na.prom" ||
    fail "the NA key expiry gauge is not the genesis valid_to ($NA_TO): $(grep key_expiry "$E2E_TMP/na.prom")"
grep -q "^gm_node_na_key_expiry_timestamp_seconds $NA_TO$" "$E2E_TMP/node.prom" || fail "the node's NA key expiry gauge"
V="$(gm version | awk '{print $NF}')"
grep -q "^genesis_mesh_build_info{version=\"$V\"} 1$" "$E2E_TMP/node.prom" || fail "the node's build_info is not $V"
grep -q '^gm_node_peers 1$' "$E2E_TMP/node.prom" || fail "the node listener does not show its peer"
log "ok - histogram per route pattern, key expiry = genesis valid_to ($NA_TO), build_info $V"

step "the node's listener is small and bounded"
python3 - "$(tr -d '[:space:]' <"$A/metrics.port")" <<'EOF' || fail "listener bounds"
import socket, sys
port = int(sys.argv[1])
def ask(raw):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(raw)
    out = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        out += c
    s.close()
    return out
def status(raw):
    return int(ask(raw).split(b" ", 2)[1])
assert status(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == 200
assert status(b"GET /other HTTP/1.1\r\n\r\n") == 404
assert status(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n") == 405
assert status(b"garbage\r\n\r\n") == 400
head = ask(b"HEAD /metrics HTTP/1.1\r\n\r\n")
assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n"), head[-40:]
# an oversized head: 431, or a reset when the unread rest of it is still in flight
try:
    big = status(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
except ConnectionResetError:
    big = 431
assert big == 431, big
assert status(b"GET /metrics HTTP/1.1\r\n\r\n") == 200
# 16 idle connections fill the listener; the 17th is closed without an answer
idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(16)]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
try:
    got = s.recv(100)
except ConnectionResetError:
    got = b""
assert got == b"", got[:40]
for c in idle:
    c.close()
print("bounds ok")
EOF
wait_until "$E2E_TIMEOUT" "the listener serves again once the idle connections are gone" curl -sf -o /dev/null "$MURL"
node_running a || fail "node a stopped answering"
log "ok - 404/405/400/431, HEAD without body, the 17th connection closed, serving again after"
e2e_finish
