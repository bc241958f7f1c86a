#!/usr/bin/env bash
# The issuance log (issue 17 part 3): every certificate issued, renewed or revoked is in a
# Merkle tree whose signed checkpoints the NA publishes. Proves, against a real NA and node:
# - a running node keeps the latest checkpoint (D/log-checkpoint.json) and `audit` proves the
#   node's certificate and another one are in the log;
# - the log is for members: an unsigned read is refused (401), and so is `audit` with the key of
#   a revoked node or of a directory without a node key;
# - after a revocation the log grows and `audit --from` proves the new log extends the old;
# - a stored entry changed in the NA's database is refused when read (log_damaged);
# - an entry and its hash both changed (a rewritten history) make the NA serve a checkpoint of
#   the same size with another root: `audit` reports the fork, and so does the node, which
#   keeps the checkpoint it held.
. "$(dirname "$0")/lib_e2e.sh"

step "network: NA, alpha and beta joined; alpha running (checks the log every 3 s)"
e2e_na_start
e2e_node_join alpha role:alpha
e2e_node_join beta role:beta
BETA_CERT="$(node_cert_id beta)"
NA_PORT="${E2E_NA_URL##*:}"
e2e_node_start alpha --crl-poll-ms 200
held_size() { json_q 'd["tree_size"]' <"$(node_dir alpha)/log-checkpoint.json" 2>/dev/null; }
held_at_least() { [ "$(held_size)" -ge "$1" ] 2>/dev/null; }
wait_until "$E2E_TIMEOUT" "alpha keeps a checkpoint of the 2 issuances" held_at_least 2
[ "$(stat -c %a "$(node_dir alpha)/log-checkpoint.json")" = 600 ] || fail "log-checkpoint.json is not 0600"

step "audit proves alpha's and beta's certificates are in the log"
gm audit --dir "$(node_dir alpha)" >"$E2E_TMP/audit1.out" 2>&1 || fail "audit failed: $(cat "$E2E_TMP/audit1.out")"
grep -q "certificate $(node_cert_id alpha): entry [0-9]* (issue" "$E2E_TMP/audit1.out" ||
    fail "audit did not prove alpha's certificate: $(cat "$E2E_TMP/audit1.out")"
gm audit --dir "$(node_dir alpha)" --cert-id "$BETA_CERT" --save "$E2E_TMP/cp1.json" --json >"$E2E_TMP/audit2.json" 2>&1 ||
    fail "audit of beta's certificate failed: $(cat "$E2E_TMP/audit2.json")"
json_ok 'd["certificates"][0]["cert_id"] == a[0] and d["consistent_with"]["tree_size"] >= 2' "$BETA_CERT" \
    <"$E2E_TMP/audit2.json" || fail "audit --json: $(cat "$E2E_TMP/audit2.json")"
gm audit --dir "$(node_dir alpha)" --cert-id 00000000-0000-4000-8000-000000000000 >"$E2E_TMP/audit3.out" 2>&1 &&
    fail "audit proved a certificate that was never issued"
grep -q "no certificate" "$E2E_TMP/audit3.out" || fail "unclear error for an unknown certificate: $(cat "$E2E_TMP/audit3.out")"

step "a revocation grows the log; the new log extends the saved checkpoint"
e2e_admin revoke --cert-id "$BETA_CERT" --reason cessation_of_operation >/dev/null || fail "revoke failed"
SIZE1="$(json_q 'd["tree_size"]' <"$E2E_TMP/cp1.json")"
wait_until "$E2E_TIMEOUT" "alpha holds the grown log" held_at_least "$((SIZE1 + 1))"
gm audit --dir "$(node_dir alpha)" --from "$E2E_TMP/cp1.json" >"$E2E_TMP/audit4.out" 2>&1 ||
    fail "audit --from failed: $(cat "$E2E_TMP/audit4.out")"
grep -q "extends the checkpoint of $SIZE1 entries" "$E2E_TMP/audit4.out" || fail "$(cat "$E2E_TMP/audit4.out")"
gm audit --dir "$(node_dir alpha)" --save "$E2E_TMP/cp2.json" >/dev/null 2>&1 || fail "audit --save failed"
SIZE2="$(json_q 'd["tree_size"]' <"$E2E_TMP/cp2.json")"

step "the log is for members only"
st="$(curl -s --cacert "$E2E_NET/tls.crt" -o "$E2E_TMP/unsigned.json" -w '%{http_code}' "$E2E_NA_URL/log/checkpoint")"
[ "$st" = 401 ] && grep -q '"code":"member_auth_required"' "$E2E_TMP/unsigned.json" ||
    fail "an unsigned GET /log/checkpoint was not refused: $st $(cat "$E2E_TMP/unsigned.json")"
gm audit --dir "$(node_dir beta)" >"$E2E_TMP/audit-revoked.out" 2>&1 && fail "audit with a revoked node's key passed"
grep -q "not_a_member" "$E2E_TMP/audit-revoked.out" || fail "unclear refusal of a revoked node: $(cat "$E2E_TMP/audit-revoked.out")"
mkdir -p "$E2E_TMP/nokey" && cp "$(node_dir alpha)/genesis.json" "$(node_dir alpha)/node.json" "$E2E_TMP/nokey/"
gm audit --dir "$E2E_TMP/nokey" >"$E2E_TMP/audit-nokey.out" 2>&1 && fail "audit without a node key passed"
grep -q "for members of the network" "$E2E_TMP/audit-nokey.out" || fail "unclear error without a key: $(cat "$E2E_TMP/audit-nokey.out")"
log "ok: unsigned reads, a revoked node and a directory without a node key are refused"

step "an entry changed in the database is refused when read"
db() { /usr/bin/python3 - "$E2E_NET/na.db" "$@"; }
db 1 <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); idx = int(sys.argv[2])
(e,) = c.execute("SELECT entry FROM issuance_log WHERE idx = ?", (idx,)).fetchone()
c.execute("UPDATE issuance_log SET entry = ? WHERE idx = ?", (e.replace('"issue"', '"issue" '), idx)); c.commit()
PY
gm audit --dir "$(node_dir alpha)" --cert-id "$BETA_CERT" >"$E2E_TMP/audit5.out" 2>&1 &&
    fail "audit accepted a changed entry: $(cat "$E2E_TMP/audit5.out")"
grep -q "log_damaged" "$E2E_TMP/audit5.out" || fail "no log_damaged: $(cat "$E2E_TMP/audit5.out")"
grep -q "ALERT: issuance log entry 1 does not match its stored hash" "$E2E_NET/na.log" || fail "the NA did not alert"
# The console shows the log (size, root, last entries) and marks the changed entry damaged.
console_log() {
    /usr/bin/python3 - "$E2E_NA_URL" "$E2E_NET/tls.crt" "$(cat "$E2E_NET/console.token")" <<'PY'
import json, ssl, sys, urllib.request
url, ca, token = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca) if url.startswith("https") else None
req = urllib.request.Request(url + "/console/api/state", headers={"Authorization": "Bearer " + token})
log = json.load(urllib.request.urlopen(req, context=ctx, timeout=10))["log"]
by = {e["index"]: e for e in log["entries"]}
ok = (log["tree_size"] >= 2 and len(log["root_hash"]) == 64 and by[1]["intact"] is False and by[1]["kind"] is None
      and by[0]["intact"] is True and by[0]["kind"] == "issue")
print(json.dumps(log)[:400]); sys.exit(0 if ok else 1)
PY
}
console_log >"$E2E_TMP/console-log.out" 2>&1 || fail "the console does not show the log with entry 1 damaged: $(cat "$E2E_TMP/console-log.out")"

step "a rewritten history (entry and hash): the NA restarted serves the same size with another root"
e2e_na_stop
db 1 <<'PY'
import hashlib, json, sqlite3, sys
c = sqlite3.connect(sys.argv[1]); idx = int(sys.argv[2])
(e,) = c.execute("SELECT entry FROM issuance_log WHERE idx = ?", (idx,)).fetchone()
d = json.loads(e.replace('"issue" ', '"issue"')); d["time"] = "2020-01-01T00:00:00Z"
t = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
c.execute("UPDATE issuance_log SET entry = ?, leaf_hash = ? WHERE idx = ?",
          (t, hashlib.sha256(b"\0" + t.encode()).digest(), idx)); c.commit()
PY
"$GM_BIN" na start --dir "$E2E_NET" --listen "127.0.0.1:$NA_PORT" --port-file "$E2E_NET.port" \
    >>"$E2E_NET/na.log" 2>&1 &
E2E_NA_PID=$!
E2E_PIDS+=("$E2E_NA_PID")
wait_until "$E2E_TIMEOUT" "the NA answers /crl again" e2e_na_crl_sequence
gm audit --dir "$(node_dir alpha)" --from "$E2E_TMP/cp2.json" >"$E2E_TMP/audit6.out" 2>&1 &&
    fail "audit accepted a rewritten history: $(cat "$E2E_TMP/audit6.out")"
grep -q "THE LOG DOES NOT EXTEND the checkpoint of $SIZE2 entries" "$E2E_TMP/audit6.out" ||
    fail "unclear fork report: $(cat "$E2E_TMP/audit6.out")"
grep -q "fork" "$E2E_TMP/audit6.out" || fail "the report does not name a fork: $(cat "$E2E_TMP/audit6.out")"
cp "$(node_dir alpha)/log-checkpoint.json" "$E2E_TMP/held.json"
alpha_saw_fork() { grep -q '"log_fork"' "$(node_dir alpha)/node.log"; }
wait_until "$E2E_TIMEOUT" "alpha logs the fork" alpha_saw_fork
[ "$(node_metric alpha '^log_forks$')" -ge 1 ] || fail "alpha's log_forks metric is $(node_metric alpha '^log_forks$')"
cmp -s "$(node_dir alpha)/log-checkpoint.json" "$E2E_TMP/held.json" || fail "alpha replaced its checkpoint by the forked one"

step "a longer rewritten log does not extend the held checkpoint either"
e2e_node_join gamma role:gamma
gm audit --dir "$(node_dir alpha)" --from "$E2E_TMP/cp2.json" >"$E2E_TMP/audit7.out" 2>&1 &&
    fail "audit accepted a longer rewritten history"
grep -q "does not extend the log of $SIZE2 entries held" "$E2E_TMP/audit7.out" ||
    fail "unclear report for a longer fork: $(cat "$E2E_TMP/audit7.out")"

e2e_node_stop alpha || fail "alpha did not exit 0 on SIGTERM"
e2e_finish
