#!/usr/bin/env bash
# End-to-end (issue 7 item 6), each part fails on the code before the fix:
# - a storage error mid-request gives the client a generic message and the request id, never
#   the NA's database path; the path and the detail go to the NA log;
# - `join` creates the node directory 0700;
# - a read-only database directory at start is named as read-only, with its path (needs a
#   private mount namespace: root and unshare; skipped otherwise);
# - every `admin` command survives an NA answer with missing or wrong-typed members (e.g. an
#   invite answer whose token_id is a number) with a clear error, no crash. (The Python
#   reference NA's own answers are read: e2e_reference_answers.sh.)
. "$(dirname "$0")/na_e2e_lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 is needed" >&2; exit 77; }

na_init
na_start

# --- storage errors do not leak the database path ---
make_node_key "$T/locked_node"
signed_join "$T/locked_node" "$(invite --role x)" >"$T/join.json" || fail "sign a join"
python3 - "$OP/na.db" "$T/locked" "$T/unlock" <<'PY' &
import os, sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
con.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
end = time.time() + 60
while time.time() < end and not os.path.exists(sys.argv[3]):
    time.sleep(0.1)
con.execute("ROLLBACK")
PY
LOCK_PID=$!
STARTED+=("$LOCK_PID")
wait_until 30 "the database is locked by another process" test -f "$T/locked"
http POST /join "@$T/join.json" -m 60
cp "$T/resp" "$T/out"
touch "$T/unlock"
wait "$LOCK_PID" || true
[ "$STATUS" = 503 ] || fail "join while the database was locked: HTTP $STATUS $(cat "$T/out")"
grep -q "storage_unavailable" "$T/out" || fail "no storage_unavailable: $(cat "$T/out")"
grep -q "$OP" "$T/out" && fail "the client was told the NA's path: $(cat "$T/out")"
grep -q "na.db" "$T/out" && fail "the client was told the database file name: $(cat "$T/out")"
RID="$(jstr request_id "$T/out")"
grep -q "request id $RID" "$T/out" || fail "the message does not name the request id: $(cat "$T/out")"
[ -n "$RID" ] || fail "no request id in the client's message: $(cat "$T/out")"
grep "$RID" "$T/na.log" | grep -q "storage error: .*$OP/na.db" ||
    fail "the NA log has no detail under request id $RID: $(grep "$RID" "$T/na.log")"
pass "a storage error tells the client a request id, not the path; the log has the detail"
invite --role x >/dev/null || fail "invite after the lock was released"

# --- join creates the node directory 0700 ---
gm join --na "$NA_URL" --token "$(invite --role n1)" --dir "$T/newnode/n1" >"$T/out" 2>&1 ||
    fail "join: $(cat "$T/out")"
[ "$(stat -c %a "$T/newnode/n1")" = 700 ] || fail "join created the node directory $(stat -c %a "$T/newnode/n1")"
pass "join creates the node directory 0700"
na_stop

# --- a read-only database directory at start ---
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare -m true 2>/dev/null; then
    mkdir -p "$T/ro"
    unshare -m sh -c "mount --bind '$OP' '$T/ro' && mount -o remount,bind,ro '$T/ro' &&
        '$GM_BIN' na start --dir '$T/ro' --listen 127.0.0.1:0" >"$T/out" 2>&1 && fail "the NA started read-only"
    grep -q "directory $T/ro is read-only" "$T/out" ||
        fail "read-only database directory: unclear message: $(cat "$T/out")"
    pass "a read-only database directory is named as such: $(tail -n 1 "$T/out")"
else
    echo "skip - read-only database directory (needs root and unshare -m)"
fi

# --- NA answers with missing or wrong-typed members ---
cat >"$T/fake_na.py" <<'PY'
import http.server, json, sys
answers = {
    "/admin/invite": {"token_id": 3, "expires_at": "2030-01-01T00:00:00Z"},
    "/admin/revoke": {"revoked": "all of them", "sequence": "7"},
    "/admin/nodes": {"nodes": [{"cert_id": 5}]},
    "/admin/clear-key": {"cleared": "yes"},
}
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = json.dumps(answers.get(self.path.split("?")[0], {})).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = answer
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
s.timeout = 1
with open(sys.argv[1], "w") as f:
    f.write(str(s.server_address[1]))
for _ in range(600):
    s.handle_request()
PY
python3 "$T/fake_na.py" "$T/fake.port" &
STARTED+=("$!")
wait_until 30 "the fake NA is listening" test -s "$T/fake.port"
FAKE="http://127.0.0.1:$(cat "$T/fake.port")"
KEY="$(grep -v '^#' "$T/newnode/n1/node.pub" | tr -d '[:space:]')"
check_answer() {
    local what="$1" member="$2"; shift 2
    local rc=0
    "$GM_BIN" admin "$@" --dir "$OP" --na "$FAKE" >"$T/out" 2>&1 || rc=$?
    [ "$rc" = 1 ] || fail "admin $what on a bad answer exited $rc (crash?): $(cat "$T/out")"
    grep -q "answer to .*\"$member\"" "$T/out" || fail "admin $what: unclear message: $(cat "$T/out")"
}
check_answer invite token_id invite --role x
check_answer "invite --json" token_id invite --role x --json
check_answer revoke revoked revoke --cert-id c1 --reason unspecified
check_answer nodes cert_id nodes
check_answer clear-key node_public_key clear-key --node-key "$KEY"
pass "admin invite/revoke/nodes/clear-key refuse malformed NA answers with a clear error (no crash)"
finish
