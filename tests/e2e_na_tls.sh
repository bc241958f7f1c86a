#!/usr/bin/env bash
# End-to-end (issue 7 item 5): the NA over TLS.
# - init makes a self-signed TLS certificate and prints its key pin; na start serves HTTPS;
# - join with the right pin succeeds and keeps it in the node directory, so renew and status
#   need no flag; join with a wrong pin, a wrong CA file or no trust at all is refused before
#   anything is sent, and leaves no certificate;
# - a node that kept the pin refuses another NA (its own valid TLS key) at the same address role;
# - admin trusts the NA's certificate of its operator directory; a wrong --na-pin is refused;
# - plain HTTP only when configured: na start without TLS and without plain_http refuses to
#   start; --plain-http (or init --no-tls) serves plain HTTP and clients use it.
. "$(dirname "$0")/na_e2e_lib.sh"

na_init
PIN="$(grep -o 'sha256//[A-Za-z0-9+/=]*' "$T/init.out" | head -n 1)"
[ -n "$PIN" ] || fail "init printed no TLS pin: $(cat "$T/init.out")"
grep -q '"tls_cert": "tls.crt"' "$OP/config.json" || fail "config.json has no tls_cert: $(cat "$OP/config.json")"
[ "$(stat -c %a "$OP/tls.key")" = 600 ] || fail "tls.key is $(stat -c %a "$OP/tls.key")"
na_start
case "$NA_URL" in https://*) ;; *) fail "the NA URL is not https: $NA_URL" ;; esac
command curl -s -o /dev/null "http://127.0.0.1:${NA_URL##*:}/health" && fail "the HTTPS port answered plain HTTP"
command curl -s -o /dev/null "$NA_URL/health" && fail "curl trusted the self-signed NA without its certificate"
http GET /health
[ "$STATUS" = 200 ] || fail "GET /health over HTTPS with the NA's certificate: $STATUS"
pass "init makes a TLS key (0600) and certificate; the NA serves HTTPS only"

# A second network: its own TLS key, its own pin (the wrong ones for our NA).
gm init --dir "$T/rogue" --network ROGUE >"$T/rogue.out" 2>&1 || fail "init rogue"
ROGUE_PIN="$(grep -o 'sha256//[A-Za-z0-9+/=]*' "$T/rogue.out" | head -n 1)"
[ -n "$ROGUE_PIN" ] && [ "$ROGUE_PIN" != "$PIN" ] || fail "rogue pin: $ROGUE_PIN"

ngm() { env -u GM_NA_CA -u GM_NA_PIN "$GM_BIN" "$@"; }
TOKEN="$(invite --role n1)" || fail "invite"
ngm join --na "$NA_URL" --token "$TOKEN" --dir "$T/bad1" --na-pin "$ROGUE_PIN" >"$T/out" 2>&1 &&
    fail "join accepted an NA whose key does not match the pin"
grep -q "does not match the pinned key" "$T/out" || fail "wrong pin: unclear message: $(cat "$T/out")"
[ -f "$T/bad1/cert.json" ] && fail "a refused join left a certificate"
ngm join --na "$NA_URL" --token "$TOKEN" --dir "$T/bad2" --na-ca "$T/rogue/tls.crt" >"$T/out" 2>&1 &&
    fail "join accepted an NA not signed by the given CA"
grep -q "not trusted" "$T/out" || fail "wrong CA: unclear message: $(cat "$T/out")"
ngm join --na "$NA_URL" --token "$TOKEN" --dir "$T/bad3" >"$T/out" 2>&1 &&
    fail "join trusted the self-signed NA with no CA or pin"
grep -q -- "--na-pin" "$T/out" || fail "no trust: the message does not say what to pass: $(cat "$T/out")"
pass "join refuses the NA with a wrong pin, a wrong CA or no trust (nothing sent, no certificate)"

ngm join --na "$NA_URL" --token "$TOKEN" --dir "$T/n1" --na-pin "$PIN" >"$T/out" 2>&1 ||
    fail "join with the right pin: $(cat "$T/out")"
grep -qx "$PIN" "$T/n1/na-tls.pin" || fail "the pin is not kept in the node directory"
ngm join --renew --dir "$T/n1" >"$T/out" 2>&1 || fail "renew with the kept pin: $(cat "$T/out")"
ngm status --dir "$T/n1" >"$T/out" 2>&1 || true
grep -q "revocation: *not revoked" "$T/out" || fail "status over TLS with the kept pin: $(cat "$T/out")"
ngm join --na "$NA_URL" --token "$(invite --role n2)" --dir "$T/n2" --na-ca "$OP/tls.crt" >"$T/out" 2>&1 ||
    fail "join with the NA's certificate as CA: $(cat "$T/out")"
cmp -s "$T/n2/na-ca.pem" "$OP/tls.crt" || fail "the CA file is not kept in the node directory"
ngm join --renew --dir "$T/n2" >"$T/out" 2>&1 || fail "renew with the kept CA: $(cat "$T/out")"
pass "join with the right pin or CA keeps it in the node directory; renew and status need no flag"

# Another NA (valid TLS of its own) where the node expects its NA: refused by the kept pin.
"$GM_BIN" na start --dir "$T/rogue" --listen 127.0.0.1:0 --port-file "$T/rogue.port" >"$T/rogue.log" 2>&1 &
STARTED+=("$!")
wait_until 30 "the rogue NA is listening" test -s "$T/rogue.port"
ROGUE_URL="https://127.0.0.1:$(cat "$T/rogue.port")"
ngm join --renew --dir "$T/n1" --na "$ROGUE_URL" >"$T/out" 2>&1 && fail "renew went to another NA"
grep -q "does not match the pinned key" "$T/out" || fail "other NA: unclear message: $(cat "$T/out")"
pass "a node refuses another NA with a valid TLS key of its own (pin kept at join)"

admin nodes --json >/dev/null 2>"$T/out" || fail "admin with the operator directory's certificate: $(cat "$T/out")"
env -u GM_NA_CA "$GM_BIN" admin nodes --dir "$OP" --na "$NA_URL" >/dev/null 2>"$T/out" ||
    fail "admin trusting config.json tls_cert: $(cat "$T/out")"
env -u GM_NA_CA "$GM_BIN" admin nodes --dir "$OP" --na "$NA_URL" --na-pin "$ROGUE_PIN" >/dev/null 2>"$T/out" &&
    fail "admin accepted the NA with a wrong --na-pin"
pass "admin trusts the NA certificate of its directory; a wrong --na-pin is refused"
na_stop

# --- plain HTTP only when configured ---
python3 - "$OP/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
del c["tls_cert"], c["tls_key"]
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
"$GM_BIN" na start --dir "$OP" --listen 127.0.0.1:0 >"$T/out" 2>&1 && fail "the NA started with neither TLS nor plain_http"
grep -q "plain-http" "$T/out" || fail "no TLS: unclear message: $(cat "$T/out")"
"$GM_BIN" na start --dir "$OP" --listen 127.0.0.1:0 --plain-http --port-file "$T/plain.port" >"$T/plain.log" 2>&1 &
STARTED+=("$!")
wait_until 30 "the plain-HTTP NA is listening" test -s "$T/plain.port"
PLAIN="http://127.0.0.1:$(cat "$T/plain.port")"
grep -q "plain HTTP" "$T/plain.log" || fail "the NA does not say it serves plain HTTP: $(cat "$T/plain.log")"
TOKEN="$(env -u GM_NA_CA "$GM_BIN" admin invite --role n3 --dir "$OP" --na "$PLAIN" 2>"$T/out")" ||
    fail "admin invite over plain HTTP: $(cat "$T/out")"
ngm join --na "$PLAIN" --token "$TOKEN" --dir "$T/n3" >"$T/out" 2>&1 || fail "join over plain HTTP: $(cat "$T/out")"
pass "plain HTTP only when configured: refused by default, served with --plain-http"
gm init --dir "$T/notls" --no-tls >"$T/out" 2>&1 || fail "init --no-tls: $(cat "$T/out")"
grep -q '"plain_http": true' "$T/notls/config.json" && grep -q '"na_url": "http://' "$T/notls/config.json" &&
    [ ! -f "$T/notls/tls.key" ] || fail "init --no-tls: $(cat "$T/notls/config.json")"
pass "init --no-tls configures plain HTTP on purpose"
finish
