#!/usr/bin/env bash
# End-to-end: SIGKILL the NA in the middle of a burst of enrollments and revocations, then
# restart it on the same database. Every certificate a client received is in the store,
# every token a client used stays consumed, every consumed token has its certificate (no
# half-done join), every revocation acknowledged is in the CRL, and the CRL sequence never
# goes back.
. "$(dirname "$0")/na_e2e_lib.sh"
command -v sqlite3 >/dev/null || { echo "SKIP: the sqlite3 command is needed for integrity_check (scripts/deps.sh installs it)" >&2; exit 77; }

WORKERS=4
PER_WORKER=12
TOTAL=$((WORKERS * PER_WORKER))

na_init
na_start

# Certificates to revoke during the burst.
for i in 1 2 3 4; do
    gm join --na "$NA_URL" --token "$(invite --role victim)" --dir "$T/v$i" >/dev/null 2>&1 || fail "join v$i"
done
admin revoke --cert-id "$(cert_field "$T/v1" cert_id)" --reason superseded >/dev/null || fail "first revoke"
SEQ_BEFORE="$(crl_seq)"

for i in $(seq 1 "$TOTAL"); do invite --role burst >"$T/token$i" || fail "invite $i"; done
grep -q "^gm_na_invites_outstanding $TOTAL\$" <<<"$(curl -sf "$NA_URL/metrics")" || fail "invites outstanding before the burst"

# Each worker enrolls its nodes one after the other; joins keep coming until the kill.
worker() {
    local w="$1" i
    for i in $(seq $(((w - 1) * PER_WORKER + 1)) $((w * PER_WORKER))); do
        "$GM_BIN" join --na "$NA_URL" --token "$(cat "$T/token$i")" --dir "$T/j$i" >"$T/j$i.out" 2>&1 || true
    done
}
pids=()
for w in $(seq 1 "$WORKERS"); do worker "$w" & pids+=($!); done
for i in 2 3 4; do
    (admin revoke --cert-id "$(cert_field "$T/v$i" cert_id)" --reason key_compromise >"$T/rev$i.out" 2>&1 || true) &
    pids+=($!)
done

# Kill once a handful of enrollments went through, while the others are in flight.
wait_until 60 "some enrollments during the burst" eval '[ "$(ls "$T"/j*/cert.json 2>/dev/null | wc -l)" -ge 6 ]'
kill -9 "$NA_PID"
wait "$NA_PID" 2>/dev/null || true
for p in "${pids[@]}"; do wait "$p" || true; done
GOT="$(ls "$T"/j*/cert.json 2>/dev/null | wc -l)"
echo "clients holding a certificate when the NA was killed: $GOT of $TOTAL"
# The kill must have come in the middle of the burst: some clients got their certificate,
# the others failed because the NA was gone (not for any other reason).
[ "$GOT" -lt "$TOTAL" ] || fail "every join finished before the kill: no crash was exercised"
for i in $(seq 1 "$TOTAL"); do
    [ -f "$T/j$i/cert.json" ] && continue
    grep -qiE "cannot reach|connection|reset|empty reply|timed out|recv failure" "$T/j$i.out" ||
        fail "join $i failed, but not because the NA was killed: $(cat "$T/j$i.out")"
done
pass "NA killed with SIGKILL during a burst of $TOTAL joins and 3 revocations ($((TOTAL - GOT)) joins cut off)"

[ "$(sqlite3 "$OP/na.db" 'PRAGMA integrity_check')" = ok ] || fail "database integrity check after SIGKILL"
pass "database passes integrity_check after SIGKILL"

na_start "$T/na2.log"
admin nodes --json >"$T/nodes.json" || fail "admin nodes after restart"
for i in $(seq 1 "$TOTAL"); do
    [ -f "$T/j$i/cert.json" ] || continue
    id="$(cert_field "$T/j$i" cert_id)"
    grep -q "\"cert_id\": \"$id\"" "$T/nodes.json" || fail "certificate $id returned to client $i is not in the store"
done
pass "every certificate a client received is in the store after restart"

for i in $(seq 1 "$TOTAL"); do
    [ -f "$T/j$i/cert.json" ] || continue
    gm join --na "$NA_URL" --token "$(cat "$T/token$i")" --dir "$T/again$i" >"$T/out" 2>&1 &&
        fail "token $i was used again after the restart"
    grep -q "403 invalid_invite_token, invite_used" "$T/out" || fail "reuse of token $i: $(cat "$T/out")"
done
pass "every token a client used stays consumed"

# No half-done join: consumed invites == burst certificates in the store.
curl -sf "$NA_URL/metrics" >"$T/metrics"
OUTSTANDING="$(sed -n 's/^gm_na_invites_outstanding //p' "$T/metrics")"
STORED="$(grep -c '"role:burst"' "$T/nodes.json" || true)"
[ $((OUTSTANDING + STORED)) = "$TOTAL" ] ||
    fail "$STORED burst certificates stored but $((TOTAL - OUTSTANDING)) invites consumed"
pass "each consumed invite has exactly its certificate ($STORED stored, $OUTSTANDING invites still open)"

SEQ_AFTER="$(crl_seq)"
[ "$SEQ_AFTER" -ge "$SEQ_BEFORE" ] || fail "CRL sequence went back: $SEQ_BEFORE -> $SEQ_AFTER"
curl -sf "$NA_URL/crl" >"$T/crl.json"
for i in 2 3 4; do
    if grep -q "^CRL sequence" "$T/rev$i.out"; then
        grep -q "$(cert_field "$T/v$i" cert_id)" "$T/crl.json" || fail "acknowledged revocation of v$i is not in the CRL"
    fi
done
pass "CRL sequence did not go back ($SEQ_BEFORE -> $SEQ_AFTER); acknowledged revocations are in the CRL"

# The NA still works: the remaining tokens enroll.
for i in $(seq 1 "$TOTAL"); do
    [ -f "$T/j$i/cert.json" ] && continue
    gm join --na "$NA_URL" --token "$(cat "$T/token$i")" --dir "$T/late$i" >"$T/out" 2>&1 ||
        grep -q "403 invalid_invite_token, invite_used" "$T/out" || fail "late join $i: $(cat "$T/out")"
done
grep -q '^gm_na_invites_outstanding 0$' <<<"$(curl -sf "$NA_URL/metrics")" || fail "invites left after the late joins"
pass "after restart the remaining invites enroll normally"
na_stop
finish
