#!/usr/bin/env bash
# End-to-end: hostile and broken input never crashes the NA and never changes its state.
# Forged and tampered proofs of possession, stale timestamps, replayed nonces (node and
# admin), malformed JSON, wrong types, bad base64, unknown members, oversized bodies (with
# Content-Length and chunked), unknown paths and methods, bad admin authentication. Each is
# a 4xx with the error envelope; afterwards `admin nodes` is unchanged, the invite used for
# the attacks still works, and the NA never answered 500.
. "$(dirname "$0")/na_e2e_lib.sh"

na_init
na_start

# A node that joins normally, so the store is not empty.
TOKEN0="$(invite --role base)"
gm join --na "$NA_URL" --token "$TOKEN0" --dir "$T/good" >/dev/null 2>&1 || fail "baseline join"
admin nodes --json >"$T/nodes.before" || fail "admin nodes"

# The token every attack below tries to use; it must survive them all.
TOKEN="$(invite --role target)"
make_node_key "$T/a"
make_node_key "$T/b"
KEY_A="$(key_of "$T/a")"
KEY_B="$(key_of "$T/b")"

# --- proof of possession ---
gm na sign-request --key "$T/a/node" --body "{\"invite_token\":\"$TOKEN\",\"node_public_key\":\"$KEY_B\"}" >"$T/body"
http POST /join "@$T/body"
expect_error 401 bad_signature "join for key B signed by key A (forged PoP)"

signed_join "$T/a" "$TOKEN" >"$T/body"
sed -i 's/"invite_token":"[^"]*"/"invite_token":"'"$TOKEN0"'"/' "$T/body"
http POST /join "@$T/body"
expect_error 401 bad_signature "signed body changed after signing"

signed_join "$T/a" "$TOKEN" "" --timestamp 2020-01-01T00:00:00Z >"$T/body"
http POST /join "@$T/body"
expect_error 401 stale_timestamp "timestamp far in the past"
signed_join "$T/a" "$TOKEN" "" --timestamp "$(date -u -d '+10 minutes' +%Y-%m-%dT%H:%M:%SZ)" >"$T/body"
http POST /join "@$T/body"
expect_error 401 stale_timestamp "timestamp 10 minutes ahead"
signed_join "$T/a" "$TOKEN" "" --timestamp "$(date -u +%Y-%m-%dT%H:%M:%S)" >"$T/body"
http POST /join "@$T/body"
expect_error 400 invalid_field "timestamp without a UTC offset"
signed_join "$T/a" "$TOKEN" "" --nonce "12345" >"$T/body"
http POST /join "@$T/body"
expect_error 400 invalid_field "nonce that is not a UUID"

# --- malformed input ---
http POST /join '{"node_public_key": "x",'
expect_error 400 malformed_json "truncated JSON"
http POST /join '{"a":1}{"b":2}'
expect_error 400 malformed_json "trailing data after the JSON object"
http POST /join '{"invite_token":"a","invite_token":"b"}'
expect_error 400 malformed_json "duplicate members"
http POST /join '["not", "an", "object"]'
expect_error 400 invalid_body "array instead of object"
http POST /join ''
expect_error 400 malformed_json "empty body"
printf '{"invite_token":"\xff\xfe"}' >"$T/body"
http POST /join "@$T/body"
expect_error 400 malformed_json "invalid UTF-8"
http POST /join "{\"node_public_key\":123,\"invite_token\":\"$TOKEN\"}"
expect_error 400 invalid_field "node_public_key of the wrong type"
http POST /join "{\"node_public_key\":\"not base64!\",\"invite_token\":\"$TOKEN\"}"
expect_error 400 bad_base64 "node_public_key that is not base64"
http POST /join "{\"node_public_key\":\"AAAA\",\"invite_token\":\"$TOKEN\"}"
expect_error 400 bad_base64 "node_public_key of the wrong length"
signed_join "$T/a" "$TOKEN" >"$T/body"
sed -i 's/"signature":"[^"]*"/"signature":"%%%notbase64%%%"/' "$T/body"
http POST /join "@$T/body"
expect_error 400 bad_base64 "signature that is not base64"
signed_join "$T/a" "$TOKEN" '"validity_hours":"10"' >"$T/body"
http POST /join "@$T/body"
expect_error 400 invalid_field "validity_hours as a string"
signed_join "$T/a" "$TOKEN" '"validity_hours":-5' >"$T/body"
http POST /join "@$T/body"
expect_error 400 invalid_field "negative validity_hours"
http POST /join "{\"node_public_key\":\"$KEY_A\",\"invite_token\":\"$TOKEN\",\"validity_hours\":1.5,\"timestamp\":\"x\",\"nonce\":\"x\",\"signature\":\"x\"}"
expect_error 400 invalid_field "validity_hours as a float"
signed_join "$T/a" "$TOKEN" '"sneaky":true' >"$T/body"
http POST /join "@$T/body"
expect_error 400 unknown_field "unknown member"
http POST /join "{\"node_public_key\":\"$KEY_A\"}"
expect_error 400 missing_field "missing invite_token"

# --- oversized bodies ---
head -c 1048576 /dev/zero | tr '\0' 'a' >"$T/huge"
http POST /join "@$T/huge"
expect_error 413 body_too_large "1 MiB body with Content-Length"
http POST /join "@$T/huge" -H 'Transfer-Encoding: chunked'
expect_error 413 body_too_large "1 MiB chunked body"
http POST /admin/invite "@$T/huge"
expect_error 413 body_too_large "1 MiB body to an admin endpoint"

# --- routing ---
http GET /nope
expect_error 404 not_found "unknown path"
http DELETE /join
expect_error 405 method_not_allowed "wrong method"
http GET /join
expect_error 405 method_not_allowed "GET on a POST endpoint"

# --- admin authentication ---
http POST /admin/invite '{"roles":["role:x"]}'
expect_error 401 missing_admin_auth "admin request without headers"
http GET /admin/nodes "" -H "X-Admin-Key-Id: nobody" -H "X-Admin-Timestamp: 2026-01-01T00:00:00Z" \
    -H "X-Admin-Nonce: 00000000-0000-4000-8000-000000000001" \
    -H "X-Admin-Signature: $(printf 'A%.0s' $(seq 1 86))=="
expect_error 401 unknown_admin_key "admin request by an unknown key id"

# another operator key with the same key id
gm init --dir "$T/rogue" >/dev/null 2>&1 || fail "init rogue"
gm admin request POST /admin/invite --body '{"roles":["role:x"]}' --dir "$T/rogue" --na "$NA_URL" >"$T/out" 2>&1 &&
    fail "an invite signed by a foreign operator key was accepted"
grep -q "HTTP 401 bad_signature)" "$T/out" || fail "foreign operator key: $(cat "$T/out")"
pass "admin request signed by a key that is not configured -> 401 bad_signature"

admin request POST /admin/invite --body '{"roles":["role:x"]}' --timestamp 2020-01-01T00:00:00Z >"$T/out" 2>&1 &&
    fail "stale admin request accepted"
grep -q "HTTP 401 stale_timestamp" "$T/out" || fail "stale admin: $(cat "$T/out")"
pass "admin request with a stale timestamp -> 401 stale_timestamp"

NONCE="$(cat /proc/sys/kernel/random/uuid)"
admin request GET /admin/nodes --nonce "$NONCE" >/dev/null 2>&1 || fail "first use of an admin nonce"
admin request GET /admin/nodes --nonce "$NONCE" >"$T/out" 2>&1 && fail "replayed admin nonce accepted"
grep -q "HTTP 401 replayed_nonce" "$T/out" || fail "replayed admin nonce: $(cat "$T/out")"
pass "admin request with a replayed nonce -> 401 replayed_nonce"

# admin bodies: each refusal pinned to its status, error code and message.
# refused_as BODY_PATH BODY "HTTP 400 code): message start"
refused_as() {
    admin request POST "$1" --body "$2" >"$T/out" 2>&1 && fail "$1 body $2 accepted"
    grep -qF -- "$3" "$T/out" || fail "$1 body $2: expected '$3', got: $(cat "$T/out")"
}
ROLE_RULE='must be 1..128 characters of A-Z a-z 0-9 : . _ - (e.g. role:finance)'
refused_as /admin/invite '{}' '(HTTP 400 missing_field): missing "roles" (e.g. ["role:finance"])'
refused_as /admin/invite '{"roles":"role:x"}' '(HTTP 400 invalid_field): "roles" must be an array of 1..32 strings'
refused_as /admin/invite '{"roles":[]}' '(HTTP 400 invalid_field): "roles" must be an array of 1..32 strings'
refused_as /admin/invite '{"roles":[1]}' "(HTTP 400 invalid_field): roles[0] $ROLE_RULE"
refused_as /admin/invite '{"roles":["bad role"]}' "(HTTP 400 invalid_field): roles[0] $ROLE_RULE"
refused_as /admin/invite '{"roles":["role:x"],"token_expiry_hours":0}' \
    '(HTTP 400 invalid_field): "token_expiry_hours" must be between 1 and 8784'
refused_as /admin/invite '{"roles":["role:x"],"max_validity_hours":"1"}' \
    '(HTTP 400 invalid_field): "max_validity_hours" must be an integer'
refused_as /admin/invite '{"roles":["role:x"],"admin":true}' '(HTTP 400 unknown_field): unknown member "admin" in request body'
pass "invalid invite bodies -> 400 with the code and message of each fault"
ONE_OF='(HTTP 400 invalid_body): give exactly one of "cert_id" or "node_public_key"'
refused_as /admin/revoke '{"reason":"unspecified"}' "$ONE_OF"
refused_as /admin/revoke '{"cert_id":"x","reason":"unspecified"}' '(HTTP 400 invalid_field): "cert_id" must be a UUID'
refused_as /admin/revoke "{\"cert_id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"reason\":\"because\"}" \
    '(HTTP 400 invalid_field): "reason" must be key_compromise, cessation_of_operation, superseded or unspecified'
refused_as /admin/revoke \
    "{\"cert_id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"node_public_key\":\"$KEY_A\",\"reason\":\"unspecified\"}" "$ONE_OF"
refused_as /admin/revoke '{"node_public_key":"AAAA","reason":"unspecified"}' \
    '(HTTP 400 bad_base64): "node_public_key" is not a 32-byte key in standard base64'
admin request POST /admin/revoke --body "{\"cert_id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"reason\":\"unspecified\"}" \
    >"$T/out" 2>&1 && fail "revoke of an unknown certificate accepted"
grep -q "HTTP 404 unknown_certificate): no certificate " "$T/out" || fail "revoke unknown: $(cat "$T/out")"
admin request POST /admin/revoke --body "{\"node_public_key\":\"$KEY_A\",\"reason\":\"unspecified\"}" \
    >"$T/out" 2>&1 && fail "revoke of an unknown node accepted"
grep -qF "HTTP 404 unknown_node): no certificate was ever issued to node key $KEY_A" "$T/out" || fail "revoke unknown node: $(cat "$T/out")"
admin clear-key --node-key "$KEY_A" >"$T/out" 2>&1 && fail "clear-key of a key that is not blocked"
grep -qF "HTTP 404 not_blocked): node key $KEY_A is not blocked" "$T/out" || fail "clear-key not blocked: $(cat "$T/out")"
pass "invalid revoke / clear-key requests -> 400 / 404"

# --- nothing changed ---
kill -0 "$NA_PID" || fail "the NA died"
admin nodes --json >"$T/nodes.after" || fail "admin nodes"
cmp -s "$T/nodes.before" "$T/nodes.after" || fail "admin nodes changed: $(diff "$T/nodes.before" "$T/nodes.after")"
[ "$(crl_seq)" = 0 ] || fail "the CRL changed"
curl -sf "$NA_URL/metrics" >"$T/metrics"
grep -q 'status="500"' "$T/metrics" && fail "the NA answered 500: $(grep 500 "$T/metrics")"
pass "after all that: admin nodes and the CRL are unchanged, no 500"

# --- the token survived, and a valid request replayed is refused ---
signed_join "$T/a" "$TOKEN" >"$T/body"
http POST /join "@$T/body"
[ "$STATUS" = 201 ] || fail "the attacked token no longer works: $STATUS $(cat "$T/resp")"
pass "the token used by every failed attack is still valid"
http POST /join "@$T/body"
expect_error 401 replayed_nonce "the same signed join sent again"
finish
