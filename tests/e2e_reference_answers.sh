#!/usr/bin/env bash
# Our CLI against the Python reference NA's RECORDED answers (issue 13): a tiny fake NA
# (tests/fake_reference_na.py, standard library only) serves the files of
# tests/vectors/reference-answers/ (its documented formats, signed with the deterministic keys
# of formats.md), and we check that
#   - admin invite prints the token of an answer that has only token_id and expires_at;
#   - admin revoke prints an answer that has only crl_sequence and revoked_count;
#   - join enrolls from the reference's join answer (a certificate with "+00:00" timestamps),
#     and join --renew takes the reference's renew answer;
#   - policy verify --na checks the reference's GET /policy under the genesis NA key;
#   - the reference's error envelopes (details, other codes) come out as clear errors,
#     and nothing is written on a refused join.
. "$(dirname "$0")/lib_e2e.sh"

ANS="$(cd "$(dirname "$0")/vectors/reference-answers" && pwd)"
FAKE="$(dirname "$0")/fake_reference_na.py"
T="$E2E_TMP"
NODE_SEED_B64="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="   # formats.md node seed 0x00..0x1f
OP_SEED_B64="ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="     # formats.md operator seed 0x20..0x3f
pass() { log "ok - $*"; }

step "start the fake reference NA"
python3 "$FAKE" "$ANS" "$T/fake.port" "$T/requests.jsonl" 2>"$T/fake.log" &
E2E_PIDS+=($!)
wait_until 20 "the fake NA wrote its port" test -s "$T/fake.port"
URL="http://127.0.0.1:$(cat "$T/fake.port")"
mkdir -m 700 "$T/op" "$T/node"
printf '# Ed25519 Private Key\n# Key ID: operator-local\n%s\n' "$OP_SEED_B64" >"$T/op/operator.key"
printf '# Ed25519 Private Key\n%s\n' "$NODE_SEED_B64" >"$T/node/node.key"
chmod 600 "$T/op/operator.key" "$T/node/node.key"

step "admin invite reads token_id"
gm admin invite --dir "$T/op" --na "$URL" --role role:client >"$T/out" 2>"$T/err" || fail "admin invite: $(cat "$T/err")"
[ "$(cat "$T/out")" = "16dd0c07-2f4c-44b9-a203-b5d8ee2d1f53" ] || fail "token printed: $(cat "$T/out")"
grep -q "expires 2026-06-07T10:00:00.123456+00:00" "$T/err" || fail "invite summary: $(cat "$T/err")"
tail -n 1 "$T/requests.jsonl" | json_ok 'd["headers"].get("x-admin-key-id") == "operator-local" and d["body"]["roles"] == ["role:client"]' ||
    fail "invite request: $(tail -n 1 "$T/requests.jsonl")"
pass "admin invite prints the token of the reference's {token_id, expires_at}"

step "admin revoke prints the reference's shape"
gm admin revoke --dir "$T/op" --na "$URL" --cert-id 5ac77e28-aaed-423d-9064-7e0ddf33e9ef --reason key_compromise \
    >"$T/out" 2>"$T/err" || fail "admin revoke: $(cat "$T/err")"
grep -qx "revoked 1 certificate(s)" "$T/out" && grep -qx "CRL sequence 1" "$T/out" || fail "revoke output: $(cat "$T/out")"
gm admin revoke --dir "$T/op" --na "$URL" --cert-id 00000000-0000-4000-8000-000000000404 --reason unspecified \
    >"$T/out" 2>&1 && fail "a 404 revoke succeeded"
grep -q "HTTP 404 certificate_not_found): Certificate not found" "$T/out" || fail "404 revoke: $(cat "$T/out")"
pass "admin revoke prints {crl_sequence, revoked_count} and the reference's 404 envelope"

step "join with the reference's answers"
gm join --dir "$T/node" --na "$URL" --token used-token-0000 >"$T/out" 2>&1 && fail "a refused join succeeded"
grep -q "HTTP 403 invalid_invite_token): Invalid, expired, or used invite token" "$T/out" || fail "refused join: $(cat "$T/out")"
[ ! -f "$T/node/cert.json" ] || fail "cert.json written after a refused join"
gm join --dir "$T/node" --na "$URL" --token 16dd0c07-2f4c-44b9-a203-b5d8ee2d1f53 --genesis "$ANS/genesis.json" \
    >"$T/out" 2>&1 || fail "join: $(cat "$T/out")"
json_ok 'd["cert_id"] == "5ac77e28-aaed-423d-9064-7e0ddf33e9ef" and d["roles"] == ["role:client"]' <"$T/node/cert.json" ||
    fail "cert.json: $(cat "$T/node/cert.json")"
grep '"path": "/join"' "$T/requests.jsonl" | tail -n 1 | json_ok '
b = d["body"]
sorted(b) == ["invite_token", "node_public_key", "nonce", "signature", "timestamp"] and d["headers"]["content-type"] == "application/json"' ||
    fail "join request: $(grep '"/join"' "$T/requests.jsonl" | tail -n 1)"
gm cert verify "$T/node/cert.json" --genesis "$ANS/genesis.json" >"$T/out" 2>&1 || fail "cert verify: $(cat "$T/out")"
pass "join enrolls from the reference's join answer; a 403 invalid_invite_token writes nothing"
gm join --renew --dir "$T/node" --na "$URL" >"$T/out" 2>&1 || fail "join --renew: $(cat "$T/out")"
json_ok 'd["cert_id"] == "9b2f6a30-11e1-4c1e-9a57-3f1f7f0c2b11"' <"$T/node/cert.json" || fail "renewed cert.json"
pass "join --renew takes the reference's renew answer"

step "GET /policy of the reference"
gm policy verify --na "$URL" --dir "$T/node" >"$T/out" 2>&1 || fail "policy verify --na: $(cat "$T/out")"
grep -q "network policy policy-REFNET-v0.1 issued 2026-06-06T10:00:00.123456Z by na-local: signature verified" "$T/out" ||
    fail "policy verify output: $(cat "$T/out")"
gm policy verify "$ANS/policy-200.json" --genesis "$ANS/genesis.json" --json | json_ok 'd["allowed_services"] == ["service-1", "service-2"]' ||
    fail "policy verify --json"
sed 's/"max_hops":6/"max_hops":7/' "$ANS/policy-200.json" >"$T/tampered.json"
gm policy verify "$T/tampered.json" --genesis "$ANS/genesis.json" >"$T/out" 2>&1 && fail "a tampered policy verified"
grep -q "not signed by this network's NA" "$T/out" || fail "tampered policy: $(cat "$T/out")"
pass "the reference's signed policy verifies with our code, a tampered one does not"

step "the reference's 401 for an admin call without its headers"
curl -s -X POST -H 'Content-Type: application/json' -d '{}' "$URL/admin/invite" | json_ok 'd["error"]["code"] == "admin_auth_failed"' ||
    fail "fake NA does not refuse an unsigned admin call"
pass "the fake NA refuses what the reference refuses (sanity of the fake)"
e2e_finish
