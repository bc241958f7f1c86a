#!/usr/bin/env bash
# The Python reference's client requests against OUR real NA (a `na start` process over HTTPS),
# shaped as its clients send them (shared spec python-reference-na-api.md §5.2-§5.5, §6.2, §7):
# its timestamp format (".000000+00:00"), its members (roles and validity_hours on /join and
# /renew, status on /heartbeat), bodies signed by `genesis-mesh na sign-request` (the whole body
# without "signature", formats.md) and sent with curl:
#   admin invite --json (token_id) -> POST /join -> GET /policy (verified) -> POST /heartbeat
#   (admin nodes shows LAST SEEN) -> POST /renew with roles and validity_hours -> admin revoke
#   (crl_sequence, revoked_count) -> the revoked certificate's heartbeat refused;
# and bad input: a replayed nonce, a stale timestamp, a body that is not the one signed,
# validity_hours out of range, each refused with a clear error and nothing recorded.
. "$(dirname "$0")/lib_e2e.sh"

T="$E2E_TMP"
pass() { log "ok - $*"; }
ref_ts() { date -u -d "${1:-now}" +%Y-%m-%dT%H:%M:%S.000000+00:00; }
# sign JSON [sign-request args...] > $T/body
sign() { local b="$1"; shift; gm na sign-request --key "$T/node" --body "$b" "$@" >"$T/body" || fail "sign-request $b"; }
# post PATH: sends $T/body, prints the status, the answer in $T/resp
post() {
    curl -s --cacert "$E2E_NET/tls.crt" -o "$T/resp" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @"$T/body" "$E2E_NA_URL$1"
}
# expect STATUS CODE TEXT WHAT: the last answer is that error
expect() {
    [ "$ST" = "$1" ] && json_ok 'd["error"]["code"] == a[0] and a[1] in d["error"]["message"]' "$2" "$3" <"$T/resp" ||
        fail "$4: want $1 $2 (\"$3\"), got $ST $(cat "$T/resp")"
}
lifetime_h() { json_q '
from datetime import datetime
f = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
int((f(d["expires_at"]) - f(d["issued_at"])).total_seconds() // 3600)' <"$1"; }

step "start our NA"
e2e_na_start
gm genesis keygen --out "$T/node" >/dev/null || fail "keygen"
KEY="$(key_of_file "$T/node.pub")"

step "admin invite: the reference reads token_id"
e2e_admin invite --role role:client --max-validity-hours 48 --json >"$T/invite.json" 2>"$T/err" || fail "invite: $(cat "$T/err")"
TOKEN="$(json_q 'd["token_id"]' <"$T/invite.json")"
json_ok 'd["token_id"] == d["token"]' <"$T/invite.json" || fail "token_id differs from token"
pass "admin invite answers token_id (the token)"

step "POST /join as the reference's client"
sign "{\"invite_token\":\"$TOKEN\",\"validity_hours\":168,\"roles\":[\"role:operator\"]}" --timestamp "$(ref_ts)"
ST="$(post /join)"
[ "$ST" = 201 ] || fail "join: $ST $(cat "$T/resp")"
cp "$T/resp" "$T/cert.json"
CERT="$(json_q 'd["cert_id"]' <"$T/cert.json")"
json_ok 'd["roles"] == ["role:client"] and d["node_public_key"] == a[0]' "$KEY" <"$T/cert.json" || fail "cert: $(cat "$T/cert.json")"
[ "$(lifetime_h "$T/cert.json")" = 48 ] || fail "168 h asked with a 48 h invite gave $(lifetime_h "$T/cert.json") h"
gm cert verify "$T/cert.json" --genesis "$E2E_NET/genesis.json" >"$T/out" 2>&1 || fail "cert verify: $(cat "$T/out")"
sign "{\"invite_token\":\"$TOKEN\",\"validity_hours\":168,\"roles\":[\"role:client\"]}" --timestamp "$(ref_ts)"
ST="$(post /join)"
expect 403 invalid_invite_token "already used" "the token again"
pass "join: roles from the invite, validity capped, a used token is 403 invalid_invite_token"

step "GET /policy"
curl -sf --cacert "$E2E_NET/tls.crt" "$E2E_NA_URL/policy" >"$T/policy.json" || fail "GET /policy"
gm policy verify "$T/policy.json" --genesis "$E2E_NET/genesis.json" >"$T/out" 2>&1 || fail "policy verify: $(cat "$T/out")"
json_ok 'd["policy_id"] == "policy-" + a[0] + "-v0.1" and sorted(d) == a[1].split(",")' "$E2E_NETWORK" \
    "allowed_ports,allowed_services,issued_at,issued_by,min_client_version,policy_id,routing,signatures" <"$T/policy.json" ||
    fail "policy: $(cat "$T/policy.json")"
cmp -s "$T/policy.json" <(tr -d '\n ' <"$E2E_NET/network-policy.json") || fail "the NA serves another policy than network-policy.json"
pass "GET /policy serves the signed network policy of init"

step "POST /heartbeat"
e2e_admin nodes >"$T/nodes.txt" 2>&1 || fail "admin nodes"
grep "$CERT" "$T/nodes.txt" | grep -q " never " || fail "last seen before any heartbeat: $(cat "$T/nodes.txt")"
sign "{\"cert_id\":\"$CERT\",\"status\":\"healthy\"}" --timestamp "$(ref_ts)"
ST="$(post /heartbeat)"
[ "$ST" = 200 ] && json_ok 'd["ack"] is True and d["server_time"]' <"$T/resp" || fail "heartbeat: $ST $(cat "$T/resp")"
SEEN="$(json_q 'd["server_time"]' <"$T/resp")"
e2e_admin nodes --json | json_ok '
n = [x for x in d["nodes"] if x["cert_id"] == a[0]][0]
n["last_heartbeat"] == a[1] and n["heartbeat_status"] == "healthy"' "$CERT" "$SEEN" || fail "admin nodes --json has no last heartbeat $SEEN"
e2e_admin nodes | grep "$CERT" | grep -q " $SEEN " || fail "admin nodes does not show LAST SEEN $SEEN"
ST="$(post /heartbeat)"
expect 401 replayed_nonce "nonce" "the same heartbeat again"
sign "{\"cert_id\":\"$CERT\",\"status\":\"healthy\"}" --timestamp "$(ref_ts '-400 seconds')"
ST="$(post /heartbeat)"
expect 401 stale_timestamp "" "a heartbeat 400 s old"
sign "{\"cert_id\":\"$CERT\",\"status\":\"healthy\"}" --timestamp "$(ref_ts)"
sed -i 's/"healthy"/"degraded"/' "$T/body"
ST="$(post /heartbeat)"
expect 401 bad_signature "" "a heartbeat whose body is not the one signed"
e2e_admin nodes --json | json_ok '[x for x in d["nodes"] if x["cert_id"] == a[0]][0]["heartbeat_status"] == "healthy"' "$CERT" ||
    fail "a refused heartbeat was recorded"
pass "heartbeat: ack and last seen; replay, stale and forged ones refused and not recorded"

step "POST /renew with the reference's members"
for v in 0 '"5"' true 87841; do  # (a float: test_na_reference; our signer refuses floats)
    sign "{\"cert_id\":\"$CERT\",\"validity_hours\":$v,\"roles\":[\"role:client\"]}" --timestamp "$(ref_ts)"
    ST="$(post /renew)"
    expect 400 invalid_field '"validity_hours" must be' "validity_hours $v"
done
sign "{\"cert_id\":\"$CERT\",\"validity_hours\":1000,\"roles\":[\"role:operator\"]}" --timestamp "$(ref_ts)"
ST="$(post /renew)"
[ "$ST" = 201 ] || fail "renew: $ST $(cat "$T/resp")"
cp "$T/resp" "$T/renewed.json"
json_ok 'd["roles"] == ["role:client"] and d["cert_id"] != a[0]' "$CERT" <"$T/renewed.json" || fail "renewed: $(cat "$T/renewed.json")"
[ "$(lifetime_h "$T/renewed.json")" = 48 ] || fail "validity_hours 1000 gave $(lifetime_h "$T/renewed.json") h (the invite's max is 48)"
pass "renew: roles ignored, validity_hours capped at the invite's maximum, bad values refused"

step "admin revoke: both answer shapes"
e2e_admin revoke --cert-id "$CERT" --reason cessation_of_operation --json >"$T/revoke.json" 2>"$T/err" || fail "revoke: $(cat "$T/err")"
json_ok 'd["crl_sequence"] == d["sequence"] == 1 and d["revoked_count"] == len(d["revoked"]) == 1' <"$T/revoke.json" ||
    fail "revoke answer: $(cat "$T/revoke.json")"
sign "{\"cert_id\":\"$CERT\",\"status\":\"healthy\"}" --timestamp "$(ref_ts)"
ST="$(post /heartbeat)"
expect 403 certificate_revoked "revoked" "the revoked certificate's heartbeat"
pass "revoke answers crl_sequence and revoked_count beside ours; a revoked certificate cannot heartbeat"
e2e_finish
