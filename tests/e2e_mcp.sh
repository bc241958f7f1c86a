#!/usr/bin/env bash
# MCP both ways (docs/agents.md "MCP"), with a real NA and nodes and the official MCP TypeScript
# SDK (tests/js, installed by scripts/deps.sh):
# - `genesis-mesh mcp serve`: strict JSON-RPC 2.0 on stdio (parse errors, invalid requests,
#   batches, unknown methods answered with their codes, the server still serving); the SDK's
#   Client lists the tools (the capabilities the node discovers), calls one served by a Python
#   SDK agent on another node and checks the provider and the verified provenance, gets tool
#   errors, and sees notifications/tools/list_changed when a new capability is provided
#   (tests/js/mcp_client_check.mjs).
# - `agent run --mcp`: an SDK McpServer (tests/js/mcp_server_fixture.mjs) run under the agent;
#   its tools become capabilities (prefix.tool, with descriptions and input schemas) asked for
#   from another node with the provenance verified; a tool error is an error answer; a crashing
#   MCP server gives error answers and a clear log line, is restarted, and serves again.
. "$(dirname "$0")/lib_e2e.sh"
. "$(dirname "$0")/agents_e2e_lib.sh"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
JS="$SRC/tests/js"
command -v node >/dev/null || fail "node (Node.js) is not installed: run scripts/deps.sh"
[ -d "$JS/node_modules/@modelcontextprotocol/sdk" ] || fail "the MCP SDK is not installed in tests/js: run scripts/deps.sh"
export PYTHONPATH="$SRC/sdk/python"

step "network: NA, a hub, a requester and a provider node; a Python SDK agent on the provider"
e2e_na_start
for n in hub req pa; do e2e_node_join "$n" role:service:agent; done
e2e_node_start hub
for n in req pa; do e2e_node_start "$n" --peer "$(node_addr hub)"; done
wait_full_mesh req pa
python3 "$SRC/sdk/python/tests/mesh_check.py" provide "$(node_dir pa)" "$E2E_TMP/ready-sdk" >"$E2E_TMP/prov-sdk.out" 2>&1 &
E2E_PIDS+=("$!")
wait_until "$E2E_TIMEOUT" "the Python agent provided sdk.test" test -s "$E2E_TMP/ready-sdk"

step "mcp serve: strict JSON-RPC 2.0 (parse error, invalid requests, batch, unknown method), still serving"
cat >"$E2E_TMP/raw.py" <<'PYEOF'
import json, subprocess, sys
lines = [
    b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}',
    b'this is not json',
    b'{"jsonrpc":"1.0","id":2,"method":"ping"}',
    b'{"jsonrpc":"2.0","id":3,"method":"ping","extra":1}',
    b'[{"jsonrpc":"2.0","id":4,"method":"ping"}]',
    b'{"jsonrpc":"2.0","id":5,"method":"ping","id":6}',
    b'{"jsonrpc":"2.0","id":7,"method":"resources/list"}',
    b'{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"sdk__test","arguments":"x"}}',
    b'{"jsonrpc":"2.0","id":9.5,"method":"ping"}',
    b'{"jsonrpc":"2.0","method":"notifications/initialized"}',
    b'{"jsonrpc":"2.0","id":"last","method":"ping"}',
]
p = subprocess.run([sys.argv[1], "mcp", "serve", "--dir", sys.argv[2]], input=b"\n".join(lines) + b"\n",
                   capture_output=True, timeout=60)
out = [json.loads(l) for l in p.stdout.splitlines()]
by = {json.dumps(o.get("id")): o for o in out}
def err(i): return by[json.dumps(i)]["error"]["code"]
assert p.returncode == 0, p
assert by["1"]["result"]["protocolVersion"] == "2024-11-05", by["1"]
assert [o["error"]["code"] for o in out if o.get("id") is None] == [-32700, -32600, -32700, -32600], out
assert err(2) == -32600 and err(3) == -32600 and err(7) == -32601 and err(8) == -32602, out
assert "resources/list" in by["7"]["error"]["message"]
assert by['"last"']["result"] == {}, out
assert len(out) == 10, out
print("PASS", len(out), "answers")
PYEOF
python3 "$E2E_TMP/raw.py" "$GM_BIN" "$(node_dir req)" >"$E2E_TMP/raw.out" 2>&1 || fail "raw JSON-RPC: $(cat "$E2E_TMP/raw.out")"

step "mcp serve under the official MCP TypeScript SDK client (tests/js/mcp_client_check.mjs)"
cat >"$E2E_TMP/upper.py" <<'PYEOF'
import json, sys
d = json.load(sys.stdin)
print(json.dumps({"upper": d["text"].upper()}))
PYEOF
node "$JS/mcp_client_check.mjs" "$GM_BIN" "$(node_dir req)" "$(node_key pa)" "$E2E_TMP/mcp-step" >"$E2E_TMP/mcp.out" 2>"$E2E_TMP/mcp.err" &
MCP_PID=$!; E2E_PIDS+=("$MCP_PID")
wait_until 120 "the MCP client listed and called the tools" test -s "$E2E_TMP/mcp-step"
agent_start exec-upper pa exec.upper --exec "python3 $E2E_TMP/upper.py" --description "upper-cases text"
rc=0; wait "$MCP_PID" || rc=$?
cat "$E2E_TMP/mcp.out" >&2
[ "$rc" -eq 0 ] && [ "$(grep -c '^PASS' "$E2E_TMP/mcp.out")" -eq 6 ] ||
    fail "MCP client: exit $rc: $(cat "$E2E_TMP/mcp.out") $(tail -20 "$E2E_TMP/mcp.err")"

step "agent run --mcp: an MCP SDK server's tools on the mesh"
rc=0; gm agent run --dir "$(node_dir pa)" --agent-id x --mcp "node 'unterminated" >"$E2E_TMP/u.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "is not closed" "$E2E_TMP/u.out" || fail "--mcp usage error: $rc $(cat "$E2E_TMP/u.out")"
"$GM_BIN" agent run --dir "$(node_dir pa)" --agent-id fixture --capability fixture --mcp "node $JS/mcp_server_fixture.mjs" \
    --log "$E2E_TMP/agent-fixture.log" >>"$E2E_TMP/agent-fixture.out" 2>&1 &
AGENT_PID[fixture]=$!; E2E_PIDS+=("$!")
ASKPY="$SRC/tests/local_api_client.py"
ask_api() { python3 "$ASKPY" ask "$(node_dir req)/node.sock" "$@"; }
wait_until "$E2E_TIMEOUT" "fixture.shout is listed" agent_listed fixture.fixture.shout
gm agents --na "$E2E_NA_URL" --capability fixture.shout --json | json_ok 'd[0]["descriptor"]["metadata"]["description"] == "Upper-cases a text" and d[0]["descriptor"]["metadata"]["input_schema"]["properties"]["text"]["type"] == "string"' ||
    fail "the tool's description and schema are not in the descriptor"
ask_api fixture.shout '{"text":"over the mesh"}' 20000 >"$E2E_TMP/a.json"
json_ok 'd["ok"] and d["output"]["shout"] == "OVER THE MESH" and d["provider"]["agent_id"] == "fixture.fixture.shout" and d["provenance"][-1]["signer"] == a[0] and d["provenance"][-1]["action"] == "executed"' \
    "$(node_key pa)" <"$E2E_TMP/a.json" || fail "fixture.shout: $(cat "$E2E_TMP/a.json")"
PID1="$(json_q 'd["output"]["pid"]' <"$E2E_TMP/a.json")"
ask_api fixture.refuse '{}' 20000 >"$E2E_TMP/a.json"
json_ok 'not d["ok"] and "the fixture refuses politely" in d["error"]["message"]' <"$E2E_TMP/a.json" || fail "tool error: $(cat "$E2E_TMP/a.json")"

step "agent run --mcp: a crashing MCP server is an error answer, logged, restarted"
ask_api fixture.crash '{}' 20000 >"$E2E_TMP/a.json"
json_ok 'not d["ok"] and "exited with status 7" in d["error"]["message"]' <"$E2E_TMP/a.json" || fail "crash: $(cat "$E2E_TMP/a.json")"
grep -q "the MCP server (node .*) exited with status 7" "$E2E_TMP/agent-fixture.log" || fail "no clear log line: $(tail -5 "$E2E_TMP/agent-fixture.log")"
wait_until "$E2E_TIMEOUT" "the MCP server was restarted" grep -q "is back" "$E2E_TMP/agent-fixture.log"
ask_api fixture.shout '{"text":"again"}' 20000 >"$E2E_TMP/a.json"
json_ok 'd["ok"] and d["output"]["shout"] == "AGAIN" and d["output"]["pid"] != int(a[0])' "$PID1" <"$E2E_TMP/a.json" ||
    fail "after the restart: $(cat "$E2E_TMP/a.json")"
agent_stop fixture
agent_unlisted fixture.fixture.shout || fail "the MCP tools are still listed after the agent stopped"

e2e_finish
