#!/usr/bin/env bash
# End-to-end, the claims of docs/operator-guide.md "Running the NA on PostgreSQL" about the
# database going away, on a real PostgreSQL server (tests/lib_pg.sh):
# - database stopped: the NA stays up, /health 200, /ready 503 (reason database), writes answer
#   503 storage_unavailable, GET /crl still serves the last CRL from memory;
# - an NA started while the database is down exits with "cannot connect to database";
# - database back: the NA reconnects by itself, /ready 200, the token refused during the outage
#   enrolls, revocations go on from the sequence the database holds;
# - backup with pg_dump, restore into a new database, an NA started on it has every
#   certificate, the consumed invites and the CRL sequence.
. "$(dirname "$0")/na_e2e_lib.sh"
. "$(dirname "$0")/lib_pg.sh"
trap 'gm_pg_stop; cleanup' EXIT

gm_pg_start "$T"
na_init
set_store() {
    /usr/bin/python3 - "$OP/config.json" "$1" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c.pop("db", None); c["store"] = sys.argv[2]
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
}
set_store "$GM_PG_URL"
na_start "$T/na1.log"
gm join --na "$NA_URL" --token "$(invite --role worker)" --dir "$T/n1" >/dev/null 2>&1 || fail "join n1"
TOKEN="$(invite --role worker)"
SEQ="$(crl_seq)"
pass "NA on PostgreSQL enrolls (CRL sequence $SEQ)"

gm_pg_stop
curl -sf "$NA_URL/health" >/dev/null || fail "/health while the database is down"
http GET /ready
[ "$STATUS" = 503 ] && grep -q '"reason":"database"' "$T/resp" || fail "/ready while the database is down: $STATUS $(cat "$T/resp")"
[ "$(crl_seq)" = "$SEQ" ] || fail "GET /crl is not served from memory while the database is down"
admin invite --role worker >"$T/out" 2>&1 && fail "an invite was made without a database"
grep -q "503" "$T/out" && grep -q "storage_unavailable" "$T/out" || fail "admin invite without a database: $(cat "$T/out")"
gm join --na "$NA_URL" --token "$TOKEN" --dir "$T/n2" >"$T/out" 2>&1 && fail "a join went through without a database"
grep -q "503" "$T/out" || fail "join without a database: $(cat "$T/out")"
grep -q "storage error: .*unreachable\|storage error: .*connection\|storage error: .*terminat" "$T/na1.log" ||
    fail "the NA log does not name the database failure"
pass "database stopped: NA up, /ready 503 database, writes 503 storage_unavailable, /crl from memory"

port_file="$T/na-down.port"
"$GM_BIN" na start --dir "$OP" --listen 127.0.0.1:0 --port-file "$port_file" >"$T/na-down.log" 2>&1 &&
    fail "an NA started without its database"
grep -q "cannot connect to database" "$T/na-down.log" || fail "NA start without a database: $(cat "$T/na-down.log")"
pass "an NA started while the database is down exits, naming the database"

gm_pg_restart
wait_until 60 "/ready once the database is back" curl -sf "$NA_URL/ready"
gm join --na "$NA_URL" --token "$TOKEN" --dir "$T/n2" >"$T/out" 2>&1 || fail "join after the database came back: $(cat "$T/out")"
out="$(admin revoke --cert-id "$(cert_field "$T/n1" cert_id)" --reason superseded)" || fail "revoke after the outage"
NEW="$(sed -n 's/^CRL sequence //p' <<<"$out")"
[ "$NEW" -gt "$SEQ" ] || fail "CRL sequence $NEW after the outage, was $SEQ"
pass "database back: the NA reconnected by itself, the refused token enrolled, revocation got sequence $NEW"

# Backup and restore (pg_dump / pg_restore), then an NA on the restored database.
"$GM_PG_BIN/pg_dump" -Fc -f "$T/na.dump" "$GM_PG_URL" || fail "pg_dump"
gm_pg_psql "CREATE DATABASE restored" || fail "create database"
"$GM_PG_BIN/pg_restore" --no-owner -d "$(gm_pg_url_db restored)" "$T/na.dump" || fail "pg_restore"
na_stop
set_store "$(gm_pg_url_db restored)"
na_start "$T/na2.log"
[ "$(crl_seq)" = "$NEW" ] || fail "the restored NA serves CRL $(crl_seq), not $NEW"
admin nodes --json >"$T/nodes.json" || fail "admin nodes on the restored database"
for n in n1 n2; do
    grep -q "\"cert_id\": \"$(cert_field "$T/$n" cert_id)\"" "$T/nodes.json" || fail "$n's certificate is not in the restored database"
done
gm join --na "$NA_URL" --token "$TOKEN" --dir "$T/n3" >"$T/out" 2>&1 && fail "a consumed invite enrolled again after restore"
grep -q "invite_used" "$T/out" || fail "reuse after restore: $(cat "$T/out")"
out="$(admin revoke --cert-id "$(cert_field "$T/n2" cert_id)" --reason superseded)" || fail "revoke on the restored database"
[ "$(sed -n 's/^CRL sequence //p' <<<"$out")" -gt "$NEW" ] || fail "the restored sequence went back"
pass "pg_dump backup restored into a new database: certificates, consumed invites and the CRL sequence carry over"
na_stop
finish
