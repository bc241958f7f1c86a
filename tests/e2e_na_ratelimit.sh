#!/usr/bin/env bash
# End-to-end: the NA's per-address limits, with tiny limits set in config.json.
# - A burst of joins from one address: some are answered 429 rate_limited (error envelope,
#   Retry-After); the store holds exactly the certificates of the 201s; each refused request,
#   sent again unchanged (same nonce) once the bucket has refilled, is accepted, so a 429
#   consumed neither the invite nor the nonce.
# - Garbage requests use up the bucket too; /renew, POST /agents and DELETE /agents/... share
#   it; GET /agents does not; GET /health, /genesis, /crl, /metrics are never limited.
# - Repeated failed admin authentications are throttled (429) per claimed key id and address,
#   and a correctly signed operator request from that same address is still served.
# - Discovery reads (GET /agents) have their own bucket: a burst gets some 429 (envelope,
#   Retry-After) while POST /join from the same address is still accepted; after the refill
#   GET /agents works again; counted as limit="reads".
# - 429s are counted in /metrics and logged with the client address; no 500.
# - Connections: past max_connections_per_ip idle connections from 127.0.0.1 a further one
#   from 127.0.0.1 is refused while 127.0.0.2 is still served; idle connections are closed
#   after connection_timeout_s, and then 127.0.0.1 is served again. The test waits on the NA's
#   gm_na_connections gauge, never on a fixed sleep (needs python3: skipped with 77 without).
. "$(dirname "$0")/na_e2e_lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 is needed for the connection-limit checks" >&2; exit 77; }

RATE=1
BURST=3
FAIL_BURST=3
READS_RATE=1
READS_BURST=3
PER_IP=16  # above N: the burst below opens N connections at once
IDLE_S=4
N=12

na_init
# init writes every limit with its default: make them tiny.
sed -i -e "s/\"per_ip_per_s\": [0-9]*/\"per_ip_per_s\": $RATE/" -e "s/\"burst\": [0-9]*/\"burst\": $BURST/" \
    -e "s/\"auth_failures_per_ip_per_s\": [0-9]*/\"auth_failures_per_ip_per_s\": 1/" \
    -e "s/\"auth_failures_burst\": [0-9]*/\"auth_failures_burst\": $FAIL_BURST/" \
    -e "s/\"reads_per_ip_per_s\": [0-9]*/\"reads_per_ip_per_s\": $READS_RATE/" \
    -e "s/\"reads_burst\": [0-9]*/\"reads_burst\": $READS_BURST/" \
    -e "s/\"max_connections_per_ip\": [0-9]*/\"max_connections_per_ip\": $PER_IP/" \
    -e "s/\"connection_timeout_s\": [0-9]*/\"connection_timeout_s\": $IDLE_S/" "$OP/config.json"
grep -q "\"burst\": $BURST," "$OP/config.json" && grep -q "\"max_connections_per_ip\": $PER_IP," "$OP/config.json" &&
    grep -q "\"reads_burst\": $READS_BURST," "$OP/config.json" ||
    fail "could not set the limits in config.json: $(cat "$OP/config.json")"
na_start

metric() { curl -sf "$NA_URL/metrics" | sed -n "s/^$1 //p"; }
# node_count: certificates in the store (admin nodes; polls while admin is throttled).
node_count() { admin nodes --json >"$T/nodes.json" 2>"$T/nodes.err" && grep -o '"cert_id"' "$T/nodes.json" | wc -l; }

# drain KIND: send requests that fail cheaply until one is answered 429 (the bucket is empty).
drain() {
    local i
    for i in $(seq 1 50); do
        case "$1" in
        requests) http POST /join '{"garbage":' ;;
        reads) http GET /agents ;;
        *) http GET /admin/nodes ;;
        esac
        [ "$STATUS" = 429 ] && return 0
        [ "$STATUS" = 400 ] || [ "$STATUS" = 401 ] || { [ "$1" = reads ] && [ "$STATUS" = 200 ]; } ||
            fail "draining the $1 bucket: $STATUS $(cat "$T/resp")"
    done
    fail "50 failing $1 were never rate-limited"
}
# refused KIND DESC CMD...: with KIND's bucket empty, CMD gets 429 rate_limited (drained again
# and retried if a token came back in between: each curl makes a TLS handshake, so on a loaded
# machine a token is often back before the next request).
refused() {
    local kind="$1" desc="$2" try; shift 2
    for try in $(seq 1 20); do
        drain "$kind"
        "$@"
        [ "$STATUS" = 429 ] && break
    done
    expect_error 429 rate_limited "$desc"
    grep -qi '^Retry-After: [1-9]' "$T/hdr" || fail "$desc: no Retry-After: $(cat "$T/hdr")"
}
hdr_http() { http "$@" -D "$T/hdr"; }
# admin_status: STATUS of a correctly signed GET /admin/nodes (the CLI prints "HTTP <status>").
admin_status() {
    if admin nodes --json >/dev/null 2>"$T/out"; then STATUS=200; else
        STATUS="$(sed -n 's/.*HTTP \([0-9]*\) .*/\1/p' "$T/out" | head -n 1)"; fi
}

# --- a burst of joins from one address ---
for i in $(seq 1 "$N"); do
    make_node_key "$T/n$i"
    signed_join "$T/n$i" "$(invite --role burst)" >"$T/join$i.json" || fail "sign join $i"
done
pids=()
for i in $(seq 1 "$N"); do
    curl -s -o "$T/resp$i" -D "$T/hdr$i" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "@$T/join$i.json" "$NA_URL/join" >"$T/status$i" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
OK=0
LIMITED=0
for i in $(seq 1 "$N"); do
    case "$(cat "$T/status$i")" in
    201) OK=$((OK + 1)) ;;
    429)
        LIMITED=$((LIMITED + 1))
        grep -q '"code":"rate_limited"' "$T/resp$i" || fail "429 without the rate_limited code: $(cat "$T/resp$i")"
        grep -q '"request_id":"[0-9a-f-]\{36\}"' "$T/resp$i" || fail "429 without a request_id: $(cat "$T/resp$i")"
        grep -qi '^Retry-After: [1-9][0-9]*' "$T/hdr$i" || fail "429 without Retry-After: $(cat "$T/hdr$i")"
        ;;
    *) fail "join $i answered $(cat "$T/status$i"): $(cat "$T/resp$i")" ;;
    esac
done
[ "$LIMITED" -gt 0 ] || fail "$N simultaneous joins with burst $BURST: none was rate-limited"
[ "$OK" -ge 1 ] || fail "none of $N joins was accepted with burst $BURST"
pass "$N simultaneous joins from one address: $OK x 201, $LIMITED x 429 rate_limited with Retry-After"

[ "$(node_count)" = "$OK" ] || fail "the store holds $(node_count) certificates, $OK joins were accepted"
[ "$(metric gm_na_invites_outstanding)" = $((N - OK)) ] || fail "invites outstanding: $(metric gm_na_invites_outstanding)"
[ "$(metric 'gm_na_rate_limited_total{limit="requests"}')" = "$LIMITED" ] || fail "429s in /metrics"
grep -q "endpoint=\"/join\",status=\"429\"} $LIMITED\$" <<<"$(curl -sf "$NA_URL/metrics")" || fail "/join 429s in /metrics"
grep -q -- '-> 429 .*(rate limited: 127.0.0.1)' "$T/na.log" || fail "no log line names the limited address"
pass "429'd joins changed nothing: $OK certificates stored, $((N - OK)) invites still open; counted and logged"

# Each refused request, sent again byte for byte once a token is back, is accepted.
for i in $(seq 1 "$N"); do
    [ "$(cat "$T/status$i")" = 429 ] || continue
    ra="$(sed -n 's/^[Rr]etry-[Aa]fter: \([0-9]*\).*/\1/p' "$T/hdr$i")"
    sleep "$ra"
    deadline=$((SECONDS + 30))
    while :; do
        http POST /join "@$T/join$i.json"
        [ "$STATUS" = 201 ] && break
        [ "$STATUS" = 429 ] || fail "join $i sent again: $STATUS $(cat "$T/resp")"
        [ "$SECONDS" -lt "$deadline" ] || fail "join $i still rate-limited after 30 s"
        sleep 0.2
    done
done
[ "$(node_count)" = "$N" ] || fail "after the retries the store holds $(node_count) certificates, not $N"
[ "$(metric gm_na_invites_outstanding)" = 0 ] || fail "invites left after the retries"
pass "every 429'd join, resent unchanged after Retry-After, is accepted (same invite, same nonce)"

# --- garbage uses up the bucket; the other limited endpoints share it; reads have their own ---
drain requests
pass "malformed joins use up the bucket too"
refused requests "POST /renew shares the bucket" hdr_http POST /renew '{}'
refused requests "POST /agents shares the bucket" hdr_http POST /agents '{}'
refused requests "DELETE /agents/... shares the bucket" hdr_http DELETE /agents/x '{}'
drain requests
http GET /agents
[ "$STATUS" = 200 ] || fail "GET /agents while the requests bucket is empty: $STATUS $(cat "$T/resp")"
for p in /health /genesis /crl /metrics; do
    for i in $(seq 1 $((READS_BURST * 3))); do
        http GET "$p"
        [ "$STATUS" = 200 ] || fail "GET $p (request $i) while the requests bucket is empty: $STATUS"
    done
done
pass "GET /agents does not use the requests bucket; GET /health, /genesis, /crl, /metrics are not limited"

# --- failed admin authentications ---
for i in $(seq 1 "$FAIL_BURST"); do
    http POST /admin/invite '{"roles":["role:x"]}'
    [ "$STATUS" = 401 ] || fail "failed admin authentication $i of $FAIL_BURST: $STATUS $(cat "$T/resp")"
done
pass "$FAIL_BURST failed admin authentications -> 401"
refused auth_failures "one more failed admin authentication" hdr_http POST /admin/invite '{"roles":["role:x"]}'
# Issue 7 item 4: the signature is checked first, so a correctly signed request from the
# throttled address goes through at once: others' failures never lock the operator out.
admin_status
[ "$STATUS" = 200 ] || fail "a signed admin request from an address others throttled: $STATUS $(cat "$T/out")"
pass "a correctly signed admin request from a throttled address is served (200)"
# Failures that claim the operator's own key id (bad signature) fill that claim's bucket...
OPKID="$(sed -n 's/.*"key_id": "\([^"]*\)".*/\1/p' "$OP/config.json" | head -n 1)"
[ -n "$OPKID" ] || fail "no operator key id in config.json"
bad_admin() {
    STATUS="$(curl -s -o "$T/resp" -w '%{http_code}' -H "X-Admin-Key-Id: $OPKID" -H "X-Admin-Timestamp: $(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        -H "X-Admin-Nonce: $(cat /proc/sys/kernel/random/uuid)" \
        -H "X-Admin-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="\
        "$NA_URL/admin/nodes")" || STATUS=000
}
for i in $(seq 1 20); do
    bad_admin
    [ "$STATUS" = 429 ] && break
    [ "$STATUS" = 401 ] || fail "forged admin request claiming '$OPKID': $STATUS $(cat "$T/resp")"
done
expect_error 429 rate_limited "forged requests claiming the operator key id are throttled"
# ... and still the operator's correctly signed revoke-class request is served.
admin_status
[ "$STATUS" = 200 ] || fail "the operator after forged failures under its own key id: $STATUS $(cat "$T/out")"
pass "a correctly signed admin request is served while forged ones under its key id get 429"
pass "admin 429s counted"

# --- discovery reads: their own bucket ---
make_node_key "$T/reader"
signed_join "$T/reader" "$(invite --role reader)" >"$T/join_reader.json" || fail "sign the reader's join"
sleep $((BURST / RATE + 1)) # the requests bucket is full again
LIMITED_REQ_BEFORE="$(metric 'gm_na_rate_limited_total{limit="requests"}')"
M=12
pids=()
for i in $(seq 1 "$M"); do
    curl -s -o "$T/rresp$i" -D "$T/rhdr$i" -w '%{http_code}' "$NA_URL/agents" >"$T/rstatus$i" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
ROK=0
RLIMITED=0
for i in $(seq 1 "$M"); do
    case "$(cat "$T/rstatus$i")" in
    200) ROK=$((ROK + 1)) ;;
    429)
        RLIMITED=$((RLIMITED + 1))
        grep -q '"code":"rate_limited"' "$T/rresp$i" || fail "GET /agents 429 without rate_limited: $(cat "$T/rresp$i")"
        grep -q '"request_id":"[0-9a-f-]\{36\}"' "$T/rresp$i" || fail "GET /agents 429 without request_id"
        grep -qi '^Retry-After: [1-9][0-9]*' "$T/rhdr$i" || fail "GET /agents 429 without Retry-After: $(cat "$T/rhdr$i")"
        ;;
    *) fail "GET /agents $i answered $(cat "$T/rstatus$i"): $(cat "$T/rresp$i")" ;;
    esac
done
[ "$RLIMITED" -gt 0 ] || fail "$M simultaneous GET /agents with reads_burst $READS_BURST: none was rate-limited"
[ "$ROK" -ge 1 ] || fail "none of $M GET /agents was answered with reads_burst $READS_BURST"
pass "$M simultaneous GET /agents from one address: $ROK x 200, $RLIMITED x 429 rate_limited with Retry-After"
# The reads bucket of 127.0.0.1 is empty (drained again in case a token came back): a join
# from the same address goes through.
drain reads
http POST /join "@$T/join_reader.json"
[ "$STATUS" = 201 ] || fail "POST /join while the reads bucket is empty: $STATUS $(cat "$T/resp")"
[ "$(metric 'gm_na_rate_limited_total{limit="requests"}')" = "$LIMITED_REQ_BEFORE" ] ||
    fail "GET /agents 429s were counted as limit=requests"
[ "$(metric 'gm_na_rate_limited_total{limit="reads"}')" -ge $((RLIMITED + 1)) ] || fail "reads 429s in /metrics"
grep -q -- 'GET /agents -> 429 .*(rate limited: 127.0.0.1)' "$T/na.log" || fail "no log line for a limited GET /agents"
pass "POST /join from the same address is unaffected (201); reads 429s counted as limit=\"reads\" and logged"
ra="$(cat "$T"/rhdr* | sed -n 's/^[Rr]etry-[Aa]fter: \([0-9]*\).*/\1/p' | sort -n | tail -n 1)"
sleep "$ra"
wait_until 30 "GET /agents after the reads bucket refilled" curl -sf "$NA_URL/agents"
pass "after the refill GET /agents works again"

grep -q 'status="500"' <<<"$(curl -sf "$NA_URL/metrics")" && fail "the NA answered 500"
kill -0 "$NA_PID" || fail "the NA died"

# --- connection limits ---
PORT="${NA_URL##*:}"
CAFILE=""
case "$NA_URL" in https:*) CAFILE="$OP/tls.crt" ;; esac
python3 - "$PORT" "$PER_IP" "$IDLE_S" $CAFILE >"$T/conn.out" 2>&1 <<'EOF' || fail "connection limits: $(cat "$T/conn.out")"
import socket, ssl, sys, time
port, per_ip, idle = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.create_default_context(cafile=sys.argv[4]) if len(sys.argv) > 4 else None

def get_health(src):
    return get_health_path(src, "/health")

def get_health_path(src, path):
    s = socket.socket()
    s.settimeout(10)
    s.bind((src, 0))
    try:
        if ctx:
            s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
        s.connect(("127.0.0.1", port))
    except (OSError, ssl.SSLError):
        s.close()
        return b""
    try:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
        pass
    finally:
        s.close()
    return data

held = []
for _ in range(per_ip):
    s = socket.socket()
    s.settimeout(idle + 20)
    s.bind(("127.0.0.1", 0))
    s.connect(("127.0.0.1", port))
    held.append(s)
# Wait until the NA holds them all: its own gauge, asked from another address (127.0.0.1 is
# at its limit), counts them plus the asking connection.
deadline = time.monotonic() + 30
while True:
    m = get_health_path("127.0.0.2", "/metrics").decode("utf-8", "replace")
    open_now = [int(l.split()[1]) for l in m.splitlines() if l.startswith("gm_na_connections ")]
    assert open_now, "no gm_na_connections gauge in /metrics"
    if open_now[0] >= per_ip + 1:
        break
    assert time.monotonic() < deadline, "the NA holds %d connections, %d were opened" % (open_now[0] - 1, per_ip)
    time.sleep(0.05)
extra = get_health("127.0.0.1")
assert not extra.startswith(b"HTTP/1.1 200"), "connection %d from 127.0.0.1 was served" % (per_ip + 1)
print("ok - connection %d from 127.0.0.1 refused while %d are held" % (per_ip + 1, per_ip))
other = get_health("127.0.0.2")
assert other.startswith(b"HTTP/1.1 200"), "127.0.0.2 not served: %r" % other[:80]
print("ok - 127.0.0.2 is still served")
t0 = time.monotonic()
for s in held:
    try:
        # the NA closes it: plain EOF, or (HTTPS) a TLS alert record (type 21) and then EOF;
        # never an HTTP answer or other data
        first = s.recv(1)
        if first == b"\x15":
            while s.recv(4096):
                pass
        else:
            assert first == b"", "data on an idle connection: %r" % first
    except ConnectionResetError:
        pass
    s.close()
print("ok - the NA closed the %d idle connections after %.1f s (connection_timeout_s %d)"
      % (per_ip, time.monotonic() - t0, idle))
again = get_health("127.0.0.1")
assert again.startswith(b"HTTP/1.1 200"), "127.0.0.1 not served after the idle ones closed: %r" % again[:80]
print("ok - 127.0.0.1 is served again")
EOF
cat "$T/conn.out"
PASSED=$((PASSED + $(grep -c '^ok - ' "$T/conn.out")))
kill -0 "$NA_PID" || fail "the NA died"
na_stop
finish
