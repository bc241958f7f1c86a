#!/usr/bin/env bash
# MCP both ways (docs/agents.md "MCP"), with a real NA and nodes and the official MCP TypeScript
# SDK (tests/js, installed by scripts/deps.sh):
# - `genesis-mesh mcp serve`: strict JSON-RPC 2.0 on stdio (parse errors, invalid requests,
#   batches, unknown methods answered with their codes, the server still serving); the SDK's
#   Client lists the tools (the capabilities the node discovers), calls one served by a Python
#   SDK agent on another node and checks the provider and the verified provenance, gets tool
#   errors, and sees notifications/tools/list_changed when a new capability is provided
#   (tests/js/mcp_client_check.mjs).
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

e2e_finish
