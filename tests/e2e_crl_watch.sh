#!/usr/bin/env bash
# The CRL watch (GET /crl?after=N&wait=S, docs/na-api.md): revocation pushed to the nodes.
#   1. alpha polls nothing (--crl-poll-ms -1) and its only peer, beta, never asks the NA
#      (--crl-poll-ms -1 --crl-watch-s -1), so no CRL can reach alpha by poll or by gossip:
#      revoking beta, alpha installs the new CRL from its watch (crl_updated source na_watch)
#      and drops its link to beta.
#   2. the NA restarts on the same port: alpha's watch reconnects by itself (the NA holds it
#      again) and the next revocation reaches alpha through it.
#   3. 200 watches held at once do not hold the NA up: /health answers and a node enrolls
#      while they wait; a revocation then answers every one of them with the new CRL.
#   4. bad watch arguments get a clear 400.
#   5. watches whose clients closed their connections are released (not held until their wait ends).
. "$(dirname "$0")/lib_e2e.sh"

WATCHERS=200
# the watchers below all come from 127.0.0.1
E2E_NA_CONFIG='{"max_connections_per_ip": 0}'

na_metric() { # NAME: the value of an NA metric
    curl -sf --cacert "$E2E_NET/tls.crt" "$E2E_NA_URL/metrics" | sed -n "s/^$1 //p"
}
na_watchers_at_least() { [ "$(na_metric gm_na_crl_watchers)" -ge "$1" ]; }
# alpha's log shows CRL SEQ installed from the watch, and from nowhere else
alpha_watch_installed() {
    grep -q "\"event\":\"crl_updated\".*\"sequence\":$1,\"source\":\"na_watch\"" "$(node_dir alpha)/node.log"
}

step "network: alpha (watch only) linked to beta (never asks the NA)"
e2e_na_start
for a in alpha beta gamma delta; do e2e_node_join "$a" "role:$a"; done
declare -A KEY
for a in alpha beta; do KEY[$a]="$(node_key "$a")"; done
e2e_node_start alpha --crl-poll-ms -1
e2e_node_start beta --peer "$(node_addr alpha)" --crl-poll-ms -1 --crl-watch-s -1
wait_until "$E2E_TIMEOUT" "alpha has a link to beta" has_peer alpha "${KEY[beta]}"
wait_until "$E2E_TIMEOUT" "the NA holds alpha's watch" na_watchers_at_least 1

step "1. revoke beta: alpha learns it from its watch and drops beta"
S0="$(e2e_na_crl_sequence)"
e2e_admin revoke --cert-id "$(node_cert_id beta)" --reason key_compromise >"$E2E_TMP/revoke1.out" 2>&1 ||
    fail "revoke beta: $(cat "$E2E_TMP/revoke1.out")"
S1="$(e2e_na_crl_sequence)"
[ "$S1" -gt "$S0" ] || fail "the NA's CRL sequence did not go up ($S0 -> $S1)"
wait_until "$E2E_TIMEOUT" "alpha holds CRL $S1" node_crl_seq_at_least alpha "$S1"
wait_until "$E2E_TIMEOUT" "alpha dropped beta" no_peer alpha "${KEY[beta]}"
alpha_watch_installed "$S1" || fail "alpha did not install CRL $S1 from its watch: $(grep crl_updated "$(node_dir alpha)/node.log")"
# (CRL 0 came from the fetch at start)
! grep '"event":"crl_updated"' "$(node_dir alpha)/node.log" | grep -v '"sequence":0,' | grep -qv '"source":"na_watch"' ||
    fail "alpha got a CRL by poll or gossip: $(grep crl_updated "$(node_dir alpha)/node.log")"
node_crl_seq_at_least beta "$S1" && fail "beta learnt the CRL: the test would not exclude gossip"
log "ok: alpha installed CRL $S1 from its watch alone and dropped beta"

step "2. the NA restarts: alpha's watch reconnects"
NA_PORT="${E2E_NA_URL##*:}"
e2e_na_stop
"$GM_BIN" na start --dir "$E2E_NET" --listen "127.0.0.1:$NA_PORT" >"$E2E_NET/na2.log" 2>&1 &
E2E_NA_PID=$!
E2E_PIDS+=("$E2E_NA_PID")
wait_until "$E2E_TIMEOUT" "the restarted NA answers /crl" e2e_na_crl_sequence
wait_until "$E2E_TIMEOUT" "alpha's watch is held by the restarted NA" na_watchers_at_least 1
e2e_admin revoke --cert-id "$(node_cert_id gamma)" --reason cessation_of_operation >"$E2E_TMP/revoke2.out" 2>&1 ||
    fail "revoke gamma: $(cat "$E2E_TMP/revoke2.out")"
S2="$(e2e_na_crl_sequence)"
wait_until "$E2E_TIMEOUT" "alpha holds CRL $S2" node_crl_seq_at_least alpha "$S2"
alpha_watch_installed "$S2" || fail "alpha did not install CRL $S2 from its watch after the NA restart"
log "ok: after the NA restarted, alpha's watch came back and delivered CRL $S2"

step "3. $WATCHERS watches held: /health and an enrollment still answer; a revocation answers them all"
python3 - "$E2E_NA_URL" "$E2E_NET/tls.crt" "$S2" "$WATCHERS" "$E2E_TMP/watchers" >"$E2E_TMP/watchers.out" 2>&1 <<'EOF' &
import socket, ssl, sys, time, json
url, ca, after, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
host, port = url.split("//")[1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
socks = []
for i in range(n):
    s = socket.create_connection((host, int(port)), timeout=60)
    if url.startswith("https:"):
        s = ctx.wrap_socket(s)
    s.sendall(("GET /crl?after=%d&wait=120 HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (after, host)).encode())
    socks.append(s)
open(out + ".sent", "w").write("%d\n" % n)
ok = 0
for s in socks:
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head else 0
    if status == 200 and json.loads(body)["sequence"] > after:
        ok += 1
    else:
        print("watcher answered %d: %r" % (status, data[:200]))
print("answered", ok)
EOF
PYPID=$!
E2E_PIDS+=("$PYPID")
wait_until "$E2E_TIMEOUT" "the watchers sent their requests" test -s "$E2E_TMP/watchers.sent"
wait_until "$E2E_TIMEOUT" "the NA holds $WATCHERS watches" na_watchers_at_least "$WATCHERS"
curl -sf --cacert "$E2E_NET/tls.crt" "$E2E_NA_URL/health" >/dev/null || fail "/health did not answer with $WATCHERS watches held"
e2e_node_join epsilon role:epsilon
[ -s "$(node_dir epsilon)/cert.json" ] || fail "no certificate for epsilon"
na_watchers_at_least "$WATCHERS" || fail "watches were answered before any CRL was published"
e2e_admin revoke --cert-id "$(node_cert_id delta)" --reason superseded >"$E2E_TMP/revoke3.out" 2>&1 ||
    fail "revoke delta: $(cat "$E2E_TMP/revoke3.out")"
wait "$PYPID" || fail "the watchers failed: $(cat "$E2E_TMP/watchers.out")"
grep -qx "answered $WATCHERS" "$E2E_TMP/watchers.out" || fail "not every watcher got the new CRL: $(cat "$E2E_TMP/watchers.out")"
log "ok: $WATCHERS watches held while /health and an enrollment answered; each got the new CRL"

step "4. bad watch arguments"
for q in "after=-1" "after=x" "after=1&wait=3601" "wait=5" "after=1&wait="; do
    st="$(curl -s -o "$E2E_TMP/bad.out" -w '%{http_code}' --cacert "$E2E_NET/tls.crt" "$E2E_NA_URL/crl?$q")"
    [ "$st" = 400 ] && grep -q '"invalid_query"' "$E2E_TMP/bad.out" || fail "GET /crl?$q answered $st: $(cat "$E2E_TMP/bad.out")"
done
st="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$E2E_NET/tls.crt" "$E2E_NA_URL/crl?after=$((S2 + 100))&wait=0")"
[ "$st" = 304 ] || fail "a watch with nothing newer and no wait answered $st, not 304"
log "ok: bad watch arguments answer 400 invalid_query; nothing newer and no wait answers 304"

step "5. watches whose clients went away do not hold their slots until their wait ends"
BASE="$(na_metric gm_na_crl_watchers)"
python3 - "$E2E_NA_URL" "$E2E_NET/tls.crt" "$S2" 20 "$BASE" <<'EOF' || fail "the NA did not hold the 20 watches"
import socket, ssl, sys, time, urllib.request
url, ca, after, n, base = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
host, port = url.split("//")[1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
socks = []
for i in range(n):
    s = socket.create_connection((host, int(port)), timeout=60)
    if url.startswith("https:"):
        s = ctx.wrap_socket(s)
    s.sendall(("GET /crl?after=%d&wait=3600 HTTP/1.1\r\nHost: %s\r\n\r\n" % (after + 1000, host)).encode())
    socks.append(s)
# exit (closing them all) only once the NA holds them
for _ in range(300):
    m = urllib.request.urlopen(url + "/metrics", timeout=5, context=ctx).read().decode()
    held = [int(l.split()[1]) for l in m.splitlines() if l.startswith("gm_na_crl_watchers ")][0]
    if held >= base + n:
        sys.exit(0)
    time.sleep(0.1)
sys.exit("the NA never held the %d watches" % n)
EOF
wait_until "$E2E_TIMEOUT" "the NA dropped the 20 watches whose clients closed" eval '[ "$(na_metric gm_na_crl_watchers)" -le '"$BASE"' ]'
log "ok: watches of clients that closed were released (held now: $(na_metric gm_na_crl_watchers))"
e2e_finish
