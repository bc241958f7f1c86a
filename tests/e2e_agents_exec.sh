#!/usr/bin/env bash
# Any program or local HTTP service as a provider, without code (`agent run --exec` / `--http`,
# agents/gm-agent-exec.c on the local API), end to end with a real NA and nodes: the command
# line is split into words without a shell (quotes kept, $VARS and globs literal); a good
# answer carries the node-signed provenance; a non-zero exit (with its stderr in the message
# and the log), output that is not JSON, output over --max-output-bytes and a program still
# running at the deadline (killed, its process gone) are error answers with clear messages;
# --http: a JSON reply is the answer, 4xx/5xx are mapped to error codes, a server slower than
# the deadline is a timeout; an agent stopped with SIGTERM leaves the registry at once.
. "$(dirname "$0")/lib_e2e.sh"
. "$(dirname "$0")/agents_e2e_lib.sh"
PY="$(dirname "$0")/local_api_client.py"
ask_api() { local n="$1"; shift; python3 "$PY" ask "$(node_dir "$n")/node.sock" "$@"; }

cat >"$E2E_TMP/tool.py" <<'PYEOF'
import json, os, sys, time
d = json.load(sys.stdin)
m = d.get("mode")
if m == "upper":
    print(json.dumps({"upper": d["text"].upper(), "argv": sys.argv[1:]}))
elif m == "exit":
    sys.stderr.write("starting\nthe tool broke: disk on fire\n")
    sys.exit(3)
elif m == "notjson":
    print("hello, this is not JSON")
elif m == "big":
    print(json.dumps({"x": "y" * 100000}))
elif m == "slow":
    with open(d["pidfile"], "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)
    print("{}")
PYEOF
cat >"$E2E_TMP/server.py" <<'PYEOF'
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        m = body.get("mode")
        code, out = 200, {"got": body, "content_type": self.headers.get("Content-Type")}
        if m == "400": code, out = 400, {"error": "field q is required"}
        elif m == "500": code, out = 500, {"error": {"message": "database exploded"}}
        elif m == "503": code, out = 503, {"error": "overloaded"}
        elif m == "notjson": out = None
        elif m == "slow": time.sleep(20)
        data = json.dumps(out).encode() if out is not None else b"<html>oops</html>"
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_address[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PYEOF

step "network: NA, a hub, a requester and a provider node; a local HTTP service"
e2e_na_start
for n in hub req pa; do e2e_node_join "$n" role:service:agent; done
e2e_node_start hub
for n in req pa; do e2e_node_start "$n" --peer "$(node_addr hub)"; done
wait_full_mesh req pa
python3 "$E2E_TMP/server.py" "$E2E_TMP/http.port" >"$E2E_TMP/http.log" 2>&1 &
E2E_PIDS+=("$!")
wait_until "$E2E_TIMEOUT" "the HTTP service wrote its port" test -s "$E2E_TMP/http.port"
HTTP_URL="http://127.0.0.1:$(cat "$E2E_TMP/http.port")/run"

step "usage errors are clear"
rc=0; gm agent run --dir "$(node_dir pa)" --agent-id x --capability c.d --exec "python3 'unterminated" >"$E2E_TMP/u.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "quote ' at byte 9 of the command is not closed" "$E2E_TMP/u.out" || fail "unterminated quote: $rc $(cat "$E2E_TMP/u.out")"
rc=0; gm agent run --dir "$(node_dir pa)" --agent-id x --capability c.d --exec a --http http://x >"$E2E_TMP/u.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "exactly one of" "$E2E_TMP/u.out" || fail "--exec and --http: $rc $(cat "$E2E_TMP/u.out")"

step "agents: one --exec (words split without a shell), one --http"
agent_start exec-tool pa exec.tool --exec "python3 '$E2E_TMP/tool.py' 'two words' \$HOME '*' \"a\\\"b\"" \
    --max-output-bytes 2000 --description "a test tool"
agent_start http-tool pa http.tool --http "$HTTP_URL"
gm agents --na "$E2E_NA_URL" --capability exec.tool --json | json_ok 'd[0]["descriptor"]["metadata"]["description"] == "a test tool"' ||
    fail "description not in the descriptor"

step "--exec: a good answer, signed by the provider's node"
ask_api req exec.tool '{"mode":"upper","text":"hello"}' 20000 >"$E2E_TMP/a.json"
json_ok 'd["ok"] and d["output"]["upper"] == "HELLO" and d["output"]["argv"] == ["two words", "$HOME", "*", "a\"b"] and d["provider"]["agent_id"] == "exec-tool" and d["provenance"][-1]["signer"] == a[0] and d["provenance"][-1]["detail"].startswith("ran python3 (exit 0")' \
    "$(node_key pa)" <"$E2E_TMP/a.json" || fail "exec answer: $(cat "$E2E_TMP/a.json")"
ask_ok "the CLI requester too" "provider: exec-tool" exec.tool --input-json '{"mode":"upper","text":"cli"}' --dir "$(node_dir req)"

step "--exec: non-zero exit, not JSON, too much output: error answers with clear messages"
ask_api req exec.tool '{"mode":"exit"}' 20000 >"$E2E_TMP/a.json"
json_ok 'not d["ok"] and "exited with status 3: the tool broke: disk on fire" in d["error"]["message"]' <"$E2E_TMP/a.json" ||
    fail "exit 3: $(cat "$E2E_TMP/a.json")"
grep -q "disk on fire" "$E2E_TMP/agent-exec-tool.log" || fail "the tool's stderr is not in the agent's log"
ask_api req exec.tool '{"mode":"notjson"}' 20000 >"$E2E_TMP/a.json"
json_ok 'not d["ok"] and "not a JSON value" in d["error"]["message"]' <"$E2E_TMP/a.json" || fail "not JSON: $(cat "$E2E_TMP/a.json")"
ask_api req exec.tool '{"mode":"big"}' 20000 >"$E2E_TMP/a.json"
json_ok 'd["error"]["code"] == "provider_error" and d["error"]["provider_code"] == "too_big" and "more than 2000 bytes on stdout" in d["error"]["message"]' \
    <"$E2E_TMP/a.json" || fail "too big: $(cat "$E2E_TMP/a.json")"

step "--exec: a program still running at the deadline is killed"
ask_api req exec.tool "{\"mode\":\"slow\",\"pidfile\":\"$E2E_TMP/slow.pid\"}" 4000 >"$E2E_TMP/a.json"
json_ok 'not d["ok"]' <"$E2E_TMP/a.json" || fail "slow program answered: $(cat "$E2E_TMP/a.json")"
[ -s "$E2E_TMP/slow.pid" ] || fail "the slow program never ran"
slow_gone() { ! kill -0 "$(cat "$E2E_TMP/slow.pid")" 2>/dev/null; }
wait_until "$E2E_TIMEOUT" "the slow program was killed" slow_gone
wait_until "$E2E_TIMEOUT" "the agent logged the kill" grep -q "did not finish before the request's deadline" "$E2E_TMP/agent-exec-tool.log"

step "--http: the service's JSON reply is the answer"
ask_api req http.tool '{"mode":"good","q":"x"}' 20000 >"$E2E_TMP/a.json"
json_ok 'd["ok"] and d["output"]["got"] == {"mode": "good", "q": "x"} and d["output"]["content_type"] == "application/json" and d["provenance"][-1]["detail"] == "HTTP 200 from the local service"' \
    <"$E2E_TMP/a.json" || fail "http answer: $(cat "$E2E_TMP/a.json")"

step "--http: 4xx and 5xx mapped to error codes, with the service's own words"
ask_api req http.tool '{"mode":"400"}' 20000 >"$E2E_TMP/a.json"
json_ok 'd["error"]["code"] == "provider_error" and d["error"]["provider_code"] == "invalid_input" and "HTTP 400: field q is required" in d["error"]["message"]' \
    <"$E2E_TMP/a.json" || fail "400: $(cat "$E2E_TMP/a.json")"
ask_api req http.tool '{"mode":"500"}' 20000 >"$E2E_TMP/a.json"
json_ok 'not d["ok"] and "failed: the service answered HTTP 500: database exploded" in d["error"]["message"]' <"$E2E_TMP/a.json" ||
    fail "500: $(cat "$E2E_TMP/a.json")"
ask_api req http.tool '{"mode":"503"}' 20000 >"$E2E_TMP/a.json"
json_ok 'not d["ok"] and "unavailable: the service answered HTTP 503: overloaded" in d["error"]["message"]' <"$E2E_TMP/a.json" ||
    fail "503: $(cat "$E2E_TMP/a.json")"
ask_api req http.tool '{"mode":"notjson"}' 20000 >"$E2E_TMP/a.json"
json_ok 'not d["ok"] and "not a JSON value" in d["error"]["message"]' <"$E2E_TMP/a.json" || fail "http not JSON: $(cat "$E2E_TMP/a.json")"

step "--http: a server slower than the deadline is a timeout"
ask_api req http.tool '{"mode":"slow"}' 3000 >"$E2E_TMP/a.json"
json_ok 'not d["ok"]' <"$E2E_TMP/a.json" || fail "slow server answered: $(cat "$E2E_TMP/a.json")"
wait_until "$E2E_TIMEOUT" "the agent logged the timeout" grep -q '"code":"timeout"' "$E2E_TMP/agent-http-tool.log"

step "SIGTERM: the agents stop and leave the registry at once"
agent_stop exec-tool
agent_stop http-tool
agent_unlisted exec-tool || fail "exec-tool still listed"
agent_unlisted http-tool || fail "http-tool still listed"

e2e_finish
