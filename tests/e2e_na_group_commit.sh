#!/usr/bin/env bash
# Group commit under SIGKILL: 24 clients join at once, so their commits share disk syncs
# (gm_na_store_syncs_total below gm_na_store_commits_total); the NA is killed with SIGKILL in
# the middle of that burst and restarted on the same database. Every certificate a client
# received is stored, no invite is used twice (each consumed invite has exactly one
# certificate, and a used token is refused), and the database is intact.
. "$(dirname "$0")/na_e2e_lib.sh"
command -v sqlite3 >/dev/null || { echo "SKIP: the sqlite3 command is needed for integrity_check (scripts/deps.sh installs it)" >&2; exit 77; }

WORKERS=24
PER_WORKER=6
TOTAL=$((WORKERS * PER_WORKER))

na_init
na_start
metric() { curl -sf "$NA_URL/metrics" | sed -n "s/^$1 //p"; }

for i in $(seq 1 "$TOTAL"); do invite --role burst >"$T/token$i" || fail "invite $i"; done
C0="$(metric gm_na_store_commits_total)"
S0="$(metric gm_na_store_syncs_total)"

worker() {
    local w="$1" i
    for i in $(seq $(((w - 1) * PER_WORKER + 1)) $((w * PER_WORKER))); do
        "$GM_BIN" join --na "$NA_URL" --token "$(cat "$T/token$i")" --dir "$T/j$i" >"$T/j$i.out" 2>&1 || true
    done
}
pids=()
for w in $(seq 1 "$WORKERS"); do worker "$w" & pids+=($!); done

# Kill once joins went through and commits have shared syncs, while the others are in flight.
shared() {
    local c s
    c="$(metric gm_na_store_commits_total)"; s="$(metric gm_na_store_syncs_total)"
    echo "$((c - C0)) $((s - S0))" >"$T/shared"
    [ "$(ls "$T"/j*/cert.json 2>/dev/null | wc -l)" -ge 12 ] && [ $((s - S0)) -lt $((c - C0)) ]
}
wait_until 120 "joins whose commits shared disk syncs" shared
read -r COMMITS SYNCS <"$T/shared"
kill -9 "$NA_PID"
wait "$NA_PID" 2>/dev/null || true
for p in "${pids[@]}"; do wait "$p" || true; done
GOT="$(ls "$T"/j*/cert.json 2>/dev/null | wc -l)"
echo "before the kill: $COMMITS commits made durable by $SYNCS syncs; clients holding a certificate: $GOT of $TOTAL"
[ "$GOT" -lt "$TOTAL" ] || fail "every join finished before the kill: no crash was exercised"
for i in $(seq 1 "$TOTAL"); do
    [ -f "$T/j$i/cert.json" ] && continue
    grep -qiE "cannot reach|connection|reset|empty reply|timed out|recv failure" "$T/j$i.out" ||
        fail "join $i failed, but not because the NA was killed: $(cat "$T/j$i.out")"
done
pass "NA killed with SIGKILL during a group-commit burst of $WORKERS clients ($((TOTAL - GOT)) joins cut off)"

[ "$(sqlite3 "$OP/na.db" 'PRAGMA integrity_check')" = ok ] || fail "database integrity check after SIGKILL"
na_start "$T/na2.log"
admin nodes --json >"$T/nodes.json" || fail "admin nodes after restart"
for i in $(seq 1 "$TOTAL"); do
    [ -f "$T/j$i/cert.json" ] || continue
    id="$(cert_field "$T/j$i" cert_id)"
    grep -q "\"cert_id\": \"$id\"" "$T/nodes.json" || fail "certificate $id returned to client $i is not in the store"
done
pass "every certificate a client received is in the store after restart"

# No invite used twice: one certificate per consumed invite, and every used token refused.
STORED="$(grep -c '"role:burst"' "$T/nodes.json" || true)"
USED="$(sqlite3 "$OP/na.db" "SELECT COUNT(*) FROM invites WHERE used = 1 AND roles LIKE '%role:burst%'")"
[ "$STORED" = "$USED" ] || fail "$STORED burst certificates stored but $USED invites consumed"
for i in $(seq 1 "$TOTAL"); do
    [ -f "$T/j$i/cert.json" ] || continue
    gm join --na "$NA_URL" --token "$(cat "$T/token$i")" --dir "$T/again$i" >"$T/out" 2>&1 &&
        fail "token $i was used again after the restart"
    grep -q "403 invalid_invite_token, invite_used" "$T/out" || fail "reuse of token $i: $(cat "$T/out")"
done
pass "no invite used twice ($STORED certificates for $USED consumed invites; used tokens refused)"
na_stop
finish
