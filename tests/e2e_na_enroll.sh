#!/usr/bin/env bash
# End-to-end: init (twice refused), the NA's startup checks (wrong NA key, tampered genesis),
# invite -> join -> certificate verified, token reuse (409) and one token raced by parallel
# joins (exactly one wins), client-claimed roles ignored, validity capped, renew, metrics.
. "$(dirname "$0")/na_e2e_lib.sh"

# --- init ---
na_init
gm init --dir "$OP" >"$T/out" 2>&1 && fail "second init succeeded"
grep -q "refusing to overwrite" "$T/out" || fail "second init: unclear message: $(cat "$T/out")"
pass "init twice is refused"
[ "$(stat -c %a "$OP/root.key")" = 600 ] && [ "$(stat -c %a "$OP/na.key")" = 600 ] &&
    [ "$(stat -c %a "$OP/operator.key")" = 600 ] || fail "private keys are not 0600"
pass "private key files are 0600"
cp "$OP/na.key" "$T/na.key.orig"
gm init --dir "$OP" --force --network E2ENA >"$T/out" 2>&1 || fail "init --force: $(cat "$T/out")"
cmp -s "$OP/na.key" "$T/na.key.orig" && fail "init --force kept the old NA key"
pass "init --force replaces the keys"

# --- startup checks ---
cp -r "$OP" "$T/wrongkey"
gm init --dir "$T/other" >/dev/null 2>&1 || fail "init other"
cp "$T/other/na.key" "$T/other/na.pub" "$T/wrongkey/"
gm na start --dir "$T/wrongkey" --listen 127.0.0.1:0 >"$T/out" 2>&1 && fail "NA started with a key not named in the genesis"
grep -q "not the NA key named in the genesis" "$T/out" || fail "wrong NA key: unclear message: $(cat "$T/out")"
pass "the NA refuses a key that is not the genesis NA key"
cp -r "$OP" "$T/tampered"
sed -i 's/"network_version": "v0.1"/"network_version": "v9.9"/' "$T/tampered/genesis.json"
gm na start --dir "$T/tampered" --listen 127.0.0.1:0 >"$T/out" 2>&1 && fail "NA started with a tampered genesis"
grep -q "does not verify" "$T/out" || fail "tampered genesis: unclear message: $(cat "$T/out")"
pass "the NA refuses a genesis that does not verify"

na_start

# --- public endpoints ---
http GET /health
[ "$STATUS" = 200 ] && grep -q '"status":"ok"' "$T/resp" || fail "/health: $STATUS $(cat "$T/resp")"
http GET /genesis
[ "$STATUS" = 200 ] && cmp -s "$T/resp" "$OP/genesis.json" || fail "/genesis does not serve genesis.json"
[ "$(crl_seq)" = 0 ] || fail "first CRL is not sequence 0"
pass "health, genesis and CRL 0 are served"

# --- invite -> join -> verify ---
TOKEN="$(invite --role finance --max-validity-hours 10)"
[ -n "$TOKEN" ] || fail "no token printed"
admin invite --role ops --json >"$T/inv.json" || fail "invite --json"
grep -q '"token": "' "$T/inv.json" && grep -q '"role:ops"' "$T/inv.json" && grep -q '"expires_at"' "$T/inv.json" ||
    fail "invite --json lacks token/roles/expires_at: $(cat "$T/inv.json")"
pass "admin invite prints a token (bare role -> role:NAME), --json the whole answer"

gm join --na "$NA_URL" --token "$TOKEN" --dir "$T/n1" >"$T/out" 2>&1 || fail "join: $(cat "$T/out")"
[ "$(stat -c %a "$T/n1/node.key")" = 600 ] || fail "node.key is not 0600"
for f in cert.json genesis.json node.json node.pub; do [ -f "$T/n1/$f" ] || fail "join did not write $f"; done
grep -q "\"na_url\": \"$NA_URL\"" "$T/n1/node.json" || fail "node.json lacks na_url"
gm cert verify "$T/n1/cert.json" --genesis "$OP/genesis.json" >"$T/out" 2>&1 || fail "cert verify: $(cat "$T/out")"
[ "$(cert_field "$T/n1" node_public_key)" = "$(key_of "$T/n1")" ] || fail "certificate is for another key"
grep -q '"role:finance"' "$T/n1/cert.json" || fail "certificate lacks role:finance"
pass "invite -> join -> certificate verifies under the genesis NA key"

gm status --dir "$T/n1" >"$T/out" 2>&1 || fail "status: $(cat "$T/out")"
grep -q "role:finance" "$T/out" && grep -q "not revoked" "$T/out" && grep -q "E2ENA" "$T/out" ||
    fail "status text: $(cat "$T/out")"
gm status --dir "$T/n1" --json >"$T/out" || fail "status --json"
grep -q '"crl_sequence": 0' "$T/out" && grep -q '"running": false' "$T/out" || fail "status --json: $(cat "$T/out")"
pass "status shows network, roles, expiry and revocation state"

# --- validity capped by the invite ---
ISSUED="$(cert_field "$T/n1" issued_at)"
EXPIRES="$(cert_field "$T/n1" expires_at)"
[ $(( $(date -d "$EXPIRES" +%s) - $(date -d "$ISSUED" +%s) )) = 36000 ] ||
    fail "default validity is not the invite max (10 h): $ISSUED .. $EXPIRES"
TOKEN="$(invite --role finance --max-validity-hours 5)"
gm join --na "$NA_URL" --token "$TOKEN" --dir "$T/n2" --validity-hours 1000 >"$T/out" 2>&1 || fail "join n2: $(cat "$T/out")"
ISSUED="$(cert_field "$T/n2" issued_at)"
EXPIRES="$(cert_field "$T/n2" expires_at)"
[ $(( $(date -d "$EXPIRES" +%s) - $(date -d "$ISSUED" +%s) )) = 18000 ] ||
    fail "validity_hours 1000 was not capped at 5 h: $ISSUED .. $EXPIRES"
TOKEN="$(invite --role finance --max-validity-hours 5)"
gm join --na "$NA_URL" --token "$TOKEN" --dir "$T/n3" --validity-hours 2 >"$T/out" 2>&1 || fail "join n3: $(cat "$T/out")"
[ $(( $(date -d "$(cert_field "$T/n3" expires_at)" +%s) - $(date -d "$(cert_field "$T/n3" issued_at)" +%s) )) = 7200 ] ||
    fail "validity_hours 2 was not honoured"
pass "validity is capped at the invite's max and shorter requests are honoured"

# --- token reuse ---
gm join --na "$NA_URL" --token "$TOKEN" --dir "$T/n4" >"$T/out" 2>&1 && fail "a used token worked twice"
grep -q "HTTP 403 invalid_invite_token, invite_used" "$T/out" || fail "reused token: $(cat "$T/out")"
[ ! -f "$T/n4/cert.json" ] || fail "cert.json written after a refused join"
pass "a reused token is refused with 403 invalid_invite_token (reason invite_used)"
gm join --na "$NA_URL" --token "not-a-token" --dir "$T/n4" >"$T/out" 2>&1 && fail "an unknown token worked"
grep -q "HTTP 403 invalid_invite_token, unknown_invite" "$T/out" || fail "unknown token: $(cat "$T/out")"
pass "an unknown token is refused with 403 invalid_invite_token (reason unknown_invite)"

# --- one token, many parallel joins: exactly one certificate ---
TOKEN="$(invite --role race)"
pids=()
for i in $(seq 1 8); do
    gm join --na "$NA_URL" --token "$TOKEN" --dir "$T/race$i" >"$T/race$i.out" 2>&1 &
    pids+=($!)
done
ok=0
for i in $(seq 1 8); do
    if wait "${pids[$((i - 1))]}"; then ok=$((ok + 1)); else grep -q "403 invalid_invite_token, invite_used" "$T/race$i.out" || fail "racer $i: $(cat "$T/race$i.out")"; fi
done
[ "$ok" = 1 ] || fail "$ok of 8 parallel joins with one token succeeded"
[ "$(nodes_json | grep -c '"role:race"')" = 1 ] || fail "the store holds more than one certificate for the raced token"
pass "8 parallel joins with one token: exactly one certificate"

# --- client-claimed roles are ignored ---
make_node_key "$T/claim"
TOKEN="$(invite --role client)"
signed_join "$T/claim" "$TOKEN" '"roles":["role:admin","role:supervisor"]' >"$T/body"
http POST /join "@$T/body"
[ "$STATUS" = 201 ] || fail "join with claimed roles: $STATUS $(cat "$T/resp")"
grep -q '"roles":\["role:client"\]' "$T/resp" || fail "claimed roles leaked into the certificate: $(cat "$T/resp")"
pass "roles claimed by the client are ignored (the invite's roles are used)"

# --- renew ---
OLD_ID="$(cert_field "$T/n1" cert_id)"
sleep 1
gm join --renew --dir "$T/n1" >"$T/out" 2>&1 || fail "renew: $(cat "$T/out")"
NEW_ID="$(cert_field "$T/n1" cert_id)"
[ "$NEW_ID" != "$OLD_ID" ] || fail "renew kept the certificate id"
grep -q '"role:finance"' "$T/n1/cert.json" || fail "renew changed the roles"
[ $(( $(date -d "$(cert_field "$T/n1" expires_at)" +%s) - $(date -d "$(cert_field "$T/n1" issued_at)" +%s) )) = 36000 ] ||
    fail "renewed certificate does not keep the original validity length"
gm cert verify "$T/n1/cert.json" --genesis "$OP/genesis.json" >/dev/null 2>&1 || fail "renewed certificate does not verify"
pass "renew gives a fresh certificate with the same roles and validity length"
admin revoke --cert-id "$NEW_ID" --reason superseded >/dev/null || fail "revoke for renew test"
gm join --renew --dir "$T/n1" >"$T/out" 2>&1 && fail "renew of a revoked certificate worked"
grep -q "403 certificate_revoked" "$T/out" || fail "renew of revoked: $(cat "$T/out")"
pass "a revoked certificate cannot be renewed"

# --- metrics ---
curl -sf "$NA_URL/metrics" >"$T/metrics" || fail "/metrics"
grep -q '^gm_na_requests_total{method="POST",endpoint="/join",status="201"} ' "$T/metrics" &&
    grep -q '^gm_na_requests_total{method="POST",endpoint="/join",status="403"} ' "$T/metrics" &&
    grep -q '^gm_na_crl_sequence 1$' "$T/metrics" && grep -q '^gm_na_joins_total ' "$T/metrics" &&
    grep -q '^gm_na_invites_outstanding 1$' "$T/metrics" || fail "metrics: $(cat "$T/metrics")"
pass "metrics count requests by endpoint and status, joins, CRL sequence, open invites"

# --- clean shutdown ---
na_stop
pass "SIGTERM stops the NA cleanly"
finish
