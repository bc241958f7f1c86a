#!/usr/bin/env bash
# End-to-end: revocation and the CRL. revoke -> sequence + 1, signed, cumulative, and
# `status` of the node says revoked; ETag / If-None-Match -> 304; key_compromise blocks the
# key from joining again until the operator clears it and issues a new invite; 8 concurrent
# revocations all land in the final CRL with 8 consecutive sequence numbers.
. "$(dirname "$0")/na_e2e_lib.sh"

na_init
na_start

# --- ETag ---
curl -s -D "$T/h" -o "$T/crl0" "$NA_URL/crl" || fail "GET /crl"
ETAG="$(grep -i '^etag:' "$T/h" | sed 's/^[^:]*: *//' | tr -d '\r')"
[ -n "$ETAG" ] || fail "no ETag on /crl"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$NA_URL/crl")"
[ "$code" = 304 ] || fail "If-None-Match with the current ETag gave $code"
code="$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "other"' "$NA_URL/crl")"
[ "$code" = 200 ] || fail "If-None-Match with another ETag gave $code"
pass "GET /crl has an ETag; If-None-Match -> 304"

# --- revoke one certificate ---
for n in n1 n2; do
    gm join --na "$NA_URL" --token "$(invite --role "$n")" --dir "$T/$n" >/dev/null 2>&1 || fail "join $n"
done
ID1="$(cert_field "$T/n1" cert_id)"
admin revoke --cert-id "$ID1" --reason cessation_of_operation --json >"$T/rev.json" || fail "revoke"
grep -q '"sequence": 1' "$T/rev.json" && grep -q "\"$ID1\"" "$T/rev.json" || fail "revoke answer: $(cat "$T/rev.json")"
[ "$(crl_seq)" = 1 ] || fail "CRL sequence is not 1 after one revocation"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$NA_URL/crl")"
[ "$code" = 200 ] || fail "old ETag still matches after a revocation ($code)"
curl -sf "$NA_URL/crl" >"$T/crl1.json"
gm cert verify "$T/n1/cert.json" --genesis "$OP/genesis.json" --crl "$T/crl1.json" >"$T/out" 2>&1 &&
    fail "cert verify accepts a revoked certificate"
grep -qF "certificate $ID1 is revoked (cessation_of_operation, CRL sequence 1)" "$T/out" ||
    fail "cert verify refused the revoked certificate without saying why: $(cat "$T/out")"
gm cert verify "$T/n2/cert.json" --genesis "$OP/genesis.json" --crl "$T/crl1.json" >/dev/null 2>&1 ||
    fail "the other certificate no longer verifies with the new CRL"
gm status --dir "$T/n1" >"$T/out" 2>&1 || true
grep -q "revocation: *revoked (cessation_of_operation)" "$T/out" || fail "status does not say revoked: $(cat "$T/out")"
gm status --dir "$T/n2" >"$T/out" 2>&1 || true
grep -q "revocation: *not revoked" "$T/out" || fail "status of n2: $(cat "$T/out")"
admin revoke --cert-id "$ID1" --reason unspecified >"$T/out" 2>&1 && fail "revoking twice succeeded"
grep -qF "409 already_revoked): $ID1 is already revoked" "$T/out" || fail "double revoke: $(cat "$T/out")"
[ "$(crl_seq)" = 1 ] || fail "a refused revocation moved the CRL"
pass "revoke -> CRL sequence + 1, the certificate fails verification, status says revoked"

# --- status when the NA is unreachable ---
gm status --dir "$T/n2" --na http://127.0.0.1:1 >"$T/out" 2>&1 || true
grep -q "unknown (NA unreachable)" "$T/out" || fail "status with the NA down: $(cat "$T/out")"
pass "status says 'unknown (NA unreachable)' when the NA cannot be reached"

# --- key_compromise blocks rejoin until clear-key + new invite ---
KEY2="$(key_of "$T/n2")"
admin revoke --node-key "$KEY2" --reason key_compromise >/dev/null || fail "revoke by node key"
[ "$(crl_seq)" = 2 ] || fail "CRL sequence is not 2"
admin nodes >"$T/out" || fail "admin nodes"
grep -q "revoked (key_compromise) \[key blocked\]" "$T/out" || fail "admin nodes does not show the block: $(cat "$T/out")"
TOKEN="$(invite --role n2)"
gm join --na "$NA_URL" --token "$TOKEN" --dir "$T/n2" >"$T/out" 2>&1 && fail "a compromised key joined again"
grep -qF "403 key_compromised): node key $KEY2 was revoked for key_compromise" "$T/out" || fail "rejoin of a compromised key: $(cat "$T/out")"
admin clear-key --node-key "$KEY2" >/dev/null || fail "clear-key"
gm join --na "$NA_URL" --token "$TOKEN" --dir "$T/n2" >"$T/out" 2>&1 ||
    fail "the token was burnt by the refused join, or clear-key did not work: $(cat "$T/out")"
grep -q "using the existing node key" "$T/out" || fail "the rejoin did not reuse the node key"
[ "$(key_of "$T/n2")" = "$KEY2" ] || fail "the node key changed"
pass "key_compromise blocks rejoin (403) until clear-key; then the same key joins with a new invite"

# --- 8 concurrent revocations ---
for i in $(seq 1 8); do
    gm join --na "$NA_URL" --token "$(invite --role "c$i")" --dir "$T/c$i" >/dev/null 2>&1 || fail "join c$i"
done
BASE="$(crl_seq)"
pids=()
for i in $(seq 1 8); do
    admin revoke --cert-id "$(cert_field "$T/c$i" cert_id)" --reason superseded >"$T/rev$i.out" 2>&1 &
    pids+=($!)
done
for i in $(seq 1 8); do wait "${pids[$((i - 1))]}" || fail "concurrent revoke $i: $(cat "$T/rev$i.out")"; done
seqs="$(for i in $(seq 1 8); do sed -n 's/^CRL sequence //p' "$T/rev$i.out"; done | sort -n | tr '\n' ' ')"
[ "$seqs" = "$(seq $((BASE + 1)) $((BASE + 8)) | tr '\n' ' ')" ] || fail "the 8 revocations got sequences $seqs"
curl -sf "$NA_URL/crl" >"$T/crl.json"
[ "$(grep -o '"sequence":[0-9]*' "$T/crl.json" | sed 's/.*://')" = $((BASE + 8)) ] || fail "final CRL sequence"
for i in $(seq 1 8); do
    grep -q "$(cert_field "$T/c$i" cert_id)" "$T/crl.json" || fail "revocation of c$i is missing from the final CRL"
done
[ "$(grep -o '"certificate_id"' "$T/crl.json" | wc -l)" = 10 ] || fail "the final CRL does not hold all 10 revocations"
gm cert verify "$T/n2/cert.json" --genesis "$OP/genesis.json" --crl "$T/crl.json" >/dev/null 2>&1 ||
    fail "the final CRL does not verify (or revokes the rejoined node)"
pass "8 concurrent revocations: consecutive sequences, all in the final (cumulative, signed) CRL"

# --- the sequence survives a restart ---
na_stop
na_start
[ "$(crl_seq)" = $((BASE + 8)) ] || fail "CRL sequence after restart: $(crl_seq)"
pass "CRL sequence is unchanged by a restart"
finish
