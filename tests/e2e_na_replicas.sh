#!/usr/bin/env bash
# End-to-end: two NA replicas (two `na start` processes on one config.json, one NA key) on one
# real PostgreSQL database (tests/lib_pg.sh starts the server). An invite raced through both
# replicas at once is won exactly once; revocations made alternately through the two replicas
# get strictly increasing CRL sequences, and each replica soon serves the other's CRL (the
# LISTEN/NOTIFY follower, lib/na/na_follow.c) without ever going back; an enrollment burst
# split across the replicas, with one SIGKILLed in the middle, loses no certificate a client
# received and uses no invite twice, and the other replica keeps serving; a node watching one
# replica with polling off gets a revocation made through the other; a client given both
# URLs ("https://a,https://b") fails over to the live one.
. "$(dirname "$0")/na_e2e_lib.sh"
. "$(dirname "$0")/lib_pg.sh"
trap 'gm_pg_stop; cleanup' EXIT

gm_pg_start "$T"
na_init
# "store" in place of "db": both replicas read this config.json
/usr/bin/python3 - "$OP/config.json" "$GM_PG_URL" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c.pop("db", None); c["store"] = sys.argv[2]
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
na_start "$T/na1.log"; A_PID=$NA_PID; A_URL=$NA_URL
na_start "$T/na2.log"; B_PID=$NA_PID; B_URL=$NA_URL
[ "$A_URL" != "$B_URL" ] || fail "the replicas share an address"
pass "two replicas on one PostgreSQL database ($A_URL, $B_URL)"

at() { local url="$1"; shift; NA_URL="$url" "$@"; }
seq_at() { curl -sf "$1/crl" | grep -o '"sequence":[0-9]*' | sed 's/.*://'; }

# ---- an invite raced through both replicas is won once
ROUNDS=6
for r in $(seq 1 "$ROUNDS"); do
    tok="$(at "$A_URL" invite --role race)" || fail "invite $r"
    gm join --na "$A_URL" --token "$tok" --dir "$T/race-a$r" >"$T/race-a$r.out" 2>&1 & pa=$!
    gm join --na "$B_URL" --token "$tok" --dir "$T/race-b$r" >"$T/race-b$r.out" 2>&1 & pb=$!
    wait "$pa" || true; wait "$pb" || true
    won=0
    for side in a b; do [ -f "$T/race-$side$r/cert.json" ] && won=$((won + 1)); done
    [ "$won" = 1 ] || fail "round $r: $won joins won one invite: $(cat "$T/race-a$r.out" "$T/race-b$r.out")"
    grep -q "invite_used" "$T/race-a$r.out" "$T/race-b$r.out" || fail "round $r: the loser was not told invite_used"
done
n="$(gm_pg_psql "SELECT COUNT(*) FROM certificates WHERE roles LIKE '%role:race%'" 2>&1)"; [ "$n" = "$ROUNDS" ] ||
    fail "the database holds $n race certificates, not $ROUNDS"
pass "an invite raced through two replicas at once is won exactly once ($ROUNDS rounds)"

# ---- the CRL sequence never goes back across replicas
LAST="$(seq_at "$A_URL")"
for i in $(seq 1 6); do
    url="$A_URL"; [ $((i % 2)) = 0 ] && url="$B_URL"
    gm join --na "$url" --token "$(at "$url" invite --role victim)" --dir "$T/v$i" >/dev/null 2>&1 || fail "join v$i"
done
for i in $(seq 1 6); do
    url="$A_URL"; [ $((i % 2)) = 0 ] && url="$B_URL"
    out="$(at "$url" admin revoke --cert-id "$(cert_field "$T/v$i" cert_id)" --reason superseded)" || fail "revoke v$i"
    s="$(sed -n 's/^CRL sequence //p' <<<"$out")"
    [ -n "$s" ] && [ "$s" -gt "$LAST" ] || fail "revocation $i through $url got sequence '$s' after $LAST"
    LAST="$s"
    # both replicas serve it soon (the other one through LISTEN/NOTIFY), and never an older one after
    for u in "$A_URL" "$B_URL"; do
        wait_until 30 "$u serves CRL $s" eval '[ "$(seq_at "'"$u"'")" -ge '"$s"' ]'
    done
done
for u in "$A_URL" "$B_URL"; do
    curl -sf "$u/crl" >"$T/crl.json"
    for i in $(seq 1 6); do grep -q "$(cert_field "$T/v$i" cert_id)" "$T/crl.json" || fail "$u: v$i missing from the CRL"; done
done
[ "$(gm_pg_psql "SELECT crl_sequence FROM na_state")" = "$LAST" ] || fail "na_state.crl_sequence is not $LAST"
pass "revocations alternating between replicas: sequences strictly increase, both replicas serve each new CRL"

# ---- a node watching replica B (polling off) learns a revocation made through replica A
gm join --na "$B_URL" --token "$(at "$B_URL" invite --role watcher)" --dir "$T/w" >/dev/null 2>&1 || fail "join w"
gm join --na "$A_URL" --token "$(at "$A_URL" invite --role victim)" --dir "$T/v7" >/dev/null 2>&1 || fail "join v7"
"$GM_BIN" node start --dir "$T/w" --port-file "$T/w.port" --crl-poll-ms -1 --log "$T/w.log" >"$T/w.out" 2>&1 &
W_PID=$!
STARTED+=($W_PID)
wait_until 60 "the watching node started" test -s "$T/w.port"
watched() { "$GM_BIN" status --dir "$T/w" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("crl_sequence") or 0)'; }
wait_until 30 "the watching node holds CRL $LAST" eval '[ "$(watched)" -ge '"$LAST"' ]'
out="$(at "$A_URL" admin revoke --cert-id "$(cert_field "$T/v7" cert_id)" --reason superseded)" || fail "revoke v7 through A"
s="$(sed -n 's/^CRL sequence //p' <<<"$out")"
[ -n "$s" ] && [ "$s" -gt "$LAST" ] || fail "revocation through A got sequence '$s' after $LAST"
LAST="$s"
wait_until 30 "the node watching B holds CRL $s" eval '[ "$(watched)" -ge '"$s"' ]'
grep -q 'na_watch' "$T/w.log" || fail "the node did not get CRL $s from its watch on B: $(tail -5 "$T/w.log")"
kill "$W_PID" 2>/dev/null; wait "$W_PID" 2>/dev/null || true
pass "a node watching replica B, polling off, gets a revocation made through replica A (LISTEN/NOTIFY wakes B's watches)"

# ---- an enrollment burst split across the replicas, one SIGKILLed in the middle
WORKERS=4
PER_WORKER=10
TOTAL=$((WORKERS * PER_WORKER))
for i in $(seq 1 "$TOTAL"); do at "$B_URL" invite --role burst >"$T/token$i" || fail "invite $i"; done
# certs FROM TO: how many of clients FROM..TO hold a certificate
certs() { local n=0 i; for i in $(seq "$1" "$2"); do [ -f "$T/j$i/cert.json" ] && n=$((n + 1)); done; echo "$n"; }
worker() {
    local w="$1" url="$2" i
    for i in $(seq $(((w - 1) * PER_WORKER + 1)) $((w * PER_WORKER))); do
        "$GM_BIN" join --na "$url" --token "$(cat "$T/token$i")" --dir "$T/j$i" >"$T/j$i.out" 2>&1 || true
    done
}
pids=()
worker 1 "$A_URL" & pids+=($!)
worker 2 "$A_URL" & pids+=($!)
worker 3 "$B_URL" & pids+=($!)
worker 4 "$B_URL" & pids+=($!)
wait_until 120 "some enrollments through replica A" eval '[ "$(certs 1 20)" -ge 4 ]'
kill -9 "$A_PID"
wait "$A_PID" 2>/dev/null || true
for p in "${pids[@]}"; do wait "$p" || true; done
GOT_A="$(certs 1 20)"
GOT_B="$(certs 21 40)"
[ "$GOT_A" -lt 20 ] || fail "every join through A finished before the kill: no crash was exercised"
[ "$GOT_B" = 20 ] || fail "replica B did not serve every join sent to it ($GOT_B of 20): $(cat "$T"/j2[1-9].out | head -5)"
for i in $(seq 1 20); do
    [ -f "$T/j$i/cert.json" ] && continue
    grep -qiE "cannot reach|connection|reset|empty reply|timed out|recv failure" "$T/j$i.out" ||
        fail "join $i failed, but not because replica A was killed: $(cat "$T/j$i.out")"
done
pass "replica A SIGKILLed during a burst of $TOTAL joins ($GOT_A of 20 through A done); B served all 20 of its own"

NA_URL="$B_URL"
curl -sf "$B_URL/health" >/dev/null || fail "replica B stopped answering"
admin nodes --json >"$T/nodes.json" || fail "admin nodes through B"
for i in $(seq 1 "$TOTAL"); do
    [ -f "$T/j$i/cert.json" ] || continue
    grep -q "\"cert_id\": \"$(cert_field "$T/j$i" cert_id)\"" "$T/nodes.json" ||
        fail "certificate of client $i is not in the database"
done
pass "every certificate a client received is in the database"
for i in $(seq 1 "$TOTAL"); do
    [ -f "$T/j$i/cert.json" ] || continue
    gm join --na "$B_URL" --token "$(cat "$T/token$i")" --dir "$T/again$i" >"$T/out" 2>&1 && fail "token $i used twice"
    grep -q "invite_used" "$T/out" || fail "reuse of token $i: $(cat "$T/out")"
done
USED="$(gm_pg_psql "SELECT COUNT(*) FROM invites WHERE used = 1 AND roles LIKE '%role:burst%'")"
STORED="$(gm_pg_psql "SELECT COUNT(*) FROM certificates WHERE roles LIKE '%role:burst%'")"
[ "$USED" = "$STORED" ] || fail "$USED burst invites consumed but $STORED certificates stored"
[ "$(gm_pg_psql "SELECT COUNT(*) FROM (SELECT used_by FROM invites WHERE used = 1 GROUP BY used_by HAVING COUNT(*) > 1) d")" = 0 ] ||
    fail "a node key consumed two invites"
pass "no invite used twice; each consumed invite has exactly its certificate ($STORED)"

# B keeps serving: the invites A never consumed enroll through B
for i in $(seq 1 20); do
    [ -f "$T/j$i/cert.json" ] && continue
    gm join --na "$B_URL" --token "$(cat "$T/token$i")" --dir "$T/late$i" >"$T/out" 2>&1 ||
        grep -q "invite_used" "$T/out" || fail "late join $i through B: $(cat "$T/out")"
done
[ "$(gm_pg_psql "SELECT COUNT(*) FROM invites WHERE used = 0 AND roles LIKE '%role:burst%'")" = 0 ] ||
    fail "burst invites left open after the late joins"
pass "after the kill, replica B enrolls the rest"
# Clients given both replicas' URLs fail over from the dead one to the live one.
BOTH="$A_URL,$B_URL"
tok="$(at "$B_URL" invite --role failover)" || fail "invite for failover"
gm join --na "$BOTH" --token "$tok" --dir "$T/fo" >"$T/out" 2>&1 || fail "join through [$BOTH] with A dead: $(cat "$T/out")"
grep -q "$BOTH" "$T/fo/node.json" || fail "the node keeps only one NA URL: $(cat "$T/fo/node.json")"
NA_URL="$BOTH" admin nodes --json >"$T/nodes2.json" || fail "admin nodes through [$BOTH]"
grep -q "\"cert_id\": \"$(cert_field "$T/fo" cert_id)\"" "$T/nodes2.json" || fail "the failover node is not listed"
pass "a client given both replicas' URLs joins and administers through the live one"
# A running node with both URLs: CRLs and its renewal come through the live replica.
"$GM_BIN" node start --dir "$T/fo" --port-file "$T/fo.port" --crl-poll-ms 200 --renew-after-s 3 \
    --log "$T/fo.log" >"$T/fo.out" 2>&1 &
STARTED+=($!)
wait_until 60 "the failover node started" test -s "$T/fo.port"
FO_CERT="$(cert_field "$T/fo" cert_id)"
out="$(at "$B_URL" admin revoke --cert-id "$(cert_field "$T/j21" cert_id)" --reason superseded)" || fail "revoke through B"
S="$(sed -n 's/^CRL sequence //p' <<<"$out")"
node_crl() { "$GM_BIN" status --dir "$T/fo" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("crl_sequence") or 0)'; }
wait_until 60 "the node holds CRL $S" eval '[ "$(node_crl)" -ge '"$S"' ]'
wait_until 60 "the node renewed through the live replica" eval '[ "$(cert_field "$T/fo" cert_id)" != "$FO_CERT" ]'
pass "a running node given both URLs gets the new CRL ($S) and renews through the live replica"
NA_PID="$B_PID"
na_stop
finish
