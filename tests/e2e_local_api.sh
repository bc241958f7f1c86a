#!/usr/bin/env bash
# The node's local API version 2 (docs/local-api.md) end to end, with a real NA and nodes on
# loopback and a Python client (tests/local_api_client.py): hello and version negotiation,
# ids and error codes (unknown op, missing id, version 2 ops without hello, bad deadline,
# oversized line), version 1 clients unchanged; provide -> ask -> answer by capability alone
# with provenance verified by the requester's node (and by the C requester, `genesis-mesh ask`);
# the descriptor carries the description and input schema; error answers; a provider that
# disconnects mid-request or stops answering gives the requester an error, never a hang;
# withdraw and closing a connection delete the registration at once.
. "$(dirname "$0")/lib_e2e.sh"
. "$(dirname "$0")/agents_e2e_lib.sh"
PY="$(dirname "$0")/local_api_client.py"
api() { local n="$1"; shift; python3 "$PY" call "$(node_dir "$n")/node.sock" "$@"; }
declare -A PROV_PID=()
# provider_start NAME NODE CAP MODE [AGENT_ID]: a Python provider, running once provide answered.
provider_start() {
    local name="$1" node="$2" cap="$3" mode="$4"
    rm -f "$E2E_TMP/ready-$name"
    python3 "$PY" provider "$(node_dir "$node")/node.sock" "$cap" "$mode" "$E2E_TMP/ready-$name" ${5:+"$5"} \
        >"$E2E_TMP/prov-$name.out" 2>&1 &
    PROV_PID[$name]=$!
    E2E_PIDS+=("$!")
    wait_until "$E2E_TIMEOUT" "provider $name provided $cap" test -s "$E2E_TMP/ready-$name"
}
ask_api() { local n="$1"; shift; python3 "$PY" ask "$(node_dir "$n")/node.sock" "$@"; }

step "network: NA, a hub, a requester and two provider nodes"
e2e_na_start
for n in hub req pa pb; do e2e_node_join "$n" role:service:agent; done
e2e_node_start hub
for n in req pa pb; do e2e_node_start "$n" --peer "$(node_addr hub)"; done
wait_full_mesh req pa pb

step "hello negotiates version 2; unknown versions are refused with a code"
api req '{"op":"hello","id":"h","versions":[1,2,7]}' >"$E2E_TMP/h.json"
json_ok 'd["ok"] and d["id"] == "h" and d["version"] == 2 and d["versions"] == [1, 2] and "ask" in d["ops"] and d["max_line"] == 262144 and d["limits"]["input_max"] == 32768' \
    <"$E2E_TMP/h.json" || fail "hello: $(cat "$E2E_TMP/h.json")"
api req '{"op":"hello","id":9,"versions":[3,4]}' | json_ok 'not d["ok"] and d["id"] == 9 and d["error"]["code"] == "unsupported_version" and "1 to 2" in d["error"]["message"]' ||
    fail "unsupported version not refused"
api req '{"op":"hello","id":"x","versions":"2"}' | json_ok 'd["error"]["code"] == "invalid_request"' || fail "malformed versions"
api req '{"op":"hello","id":"a","versions":[2]}' '{"op":"hello","id":"b","versions":[2]}' | tail -1 |
    json_ok 'd["id"] == "b" and d["error"]["code"] == "invalid_request" and "already" in d["error"]["message"]' || fail "second hello"
api req '{"op":"hello","id":1,"versions":[1]}' '{"op":"status","id":2}' | tail -1 | json_ok 'd["ok"] and d["id"] == 2' ||
    fail "version 1 by hello"

step "version 2 requests: ids required and echoed, unknown ops and bad deadlines get codes"
api req '{"op":"hello","id":1,"versions":[2]}' '{"op":"frobnicate","id":"f1"}' | tail -1 |
    json_ok 'd["id"] == "f1" and d["error"]["code"] == "unknown_op" and "frobnicate" in d["error"]["message"]' || fail "unknown op"
api req '{"op":"hello","id":1,"versions":[2]}' '{"op":"status"}' | tail -1 |
    json_ok 'd["id"] is None and d["error"]["code"] == "invalid_request" and "id" in d["error"]["message"]' || fail "missing id"
api req '{"op":"hello","id":1,"versions":[2]}' '{"op":"ask","id":3,"capability":"x","input":{},"deadline_ms":0}' | tail -1 |
    json_ok 'd["id"] == 3 and d["error"]["code"] == "invalid_request" and "deadline_ms" in d["error"]["message"]' || fail "bad deadline"
api req '{"op":"hello","id":1,"versions":[2]}' '{"op":"answer","id":4,"request_id":"00000000-0000-4000-8000-000000000000","output":{}}' | tail -1 |
    json_ok 'd["error"]["code"] == "not_found"' || fail "answer to an unknown request"
api req '{"op":"hello","id":1,"versions":[2]}' '{"op":"withdraw","id":5,"capability":"never.provided"}' | tail -1 |
    json_ok 'd["error"]["code"] == "not_found"' || fail "withdraw of nothing"
api req '{"op":"hello","id":1,"versions":[2]}' '{"op":"provide","id":6,"capability":"Bad Name!"}' | tail -1 |
    json_ok 'd["error"]["code"] == "invalid_request" and "capability" in d["error"]["message"]' || fail "bad capability name"
api req 'not json at all' | json_ok 'd["error"]["code"] == "invalid_request"' || fail "garbage line"
python3 -c 'import sys; sys.stdout.write("{\"op\":\"status\",\"pad\":\"" + "x" * 300000 + "\"}\n")' >"$E2E_TMP/long.line"
python3 "$PY" raw "$(node_dir req)/node.sock" "$E2E_TMP/long.line" | json_ok 'd["error"]["code"] == "too_big"' || fail "oversized line"
node_running req || fail "the node died on bad input"

step "version 1 clients are unchanged: no hello, no id; version 2 operations need hello"
api req '{"op":"status"}' | json_ok 'd["ok"] and "id" not in d and d["running"]' || fail "v1 status"
api req '{"op":"provide","capability":"x.y"}' | json_ok 'd["error"]["code"] == "hello_required" and "hello" in d["error"]["message"]' ||
    fail "provide without hello"
api req '{"op":"nope"}' | json_ok 'd["error"]["code"] == "unknown_op" and "id" not in d' || fail "v1 unknown op"

step "provide -> ask -> answer, by capability alone; the node signs and verifies"
provider_start echo-a pa echo.text echo echo-a
json_ok 'd["ok"] and d["agent_id"] == "echo-a" and d["capability"] == "echo.text" and d["expires_at"]' <"$E2E_TMP/ready-echo-a" ||
    fail "provide answer: $(cat "$E2E_TMP/ready-echo-a")"
wait_until "$E2E_TIMEOUT" "the NA lists echo-a" agent_listed echo-a
gm agents --dir "$(node_dir req)" --capability echo.text --json >"$E2E_TMP/agents.json" 2>>"$ASK_ALL"
json_ok 'd[0]["descriptor"]["agent_id"] == "echo-a" and d[0]["check"] == "verified" and d[0]["descriptor"]["metadata"]["description"] == "test provider (echo)" and d[0]["descriptor"]["metadata"]["input_schema"] == {"type": "object"} and d[0]["live"] == "reachable"' \
    <"$E2E_TMP/agents.json" || fail "descriptor: $(cat "$E2E_TMP/agents.json")"
ask_api req echo.text '{"text":"hi"}' 10000 >"$E2E_TMP/ask1.json"
json_ok 'd["ok"] and d["id"] == "ask" and d["output"]["echo"] == {"text": "hi"} and d["output"]["requester"] == a[0] and d["provider"] == {"agent_id": "echo-a", "node_public_key": a[1]} and d["provenance"][-1]["signer"] == a[1] and d["provenance"][-1]["action"] == "executed" and d["provenance"][-1]["detail"] == "echoed by a test provider" and [c["node_public_key"] for c in d["certificates"]] == [a[1]]' \
    "$(node_key req)" "$(node_key pa)" <"$E2E_TMP/ask1.json" || fail "ask: $(cat "$E2E_TMP/ask1.json")"
ask_ok "the C requester (genesis-mesh ask) verifies the same answer" "provider: echo-a" \
    echo.text --input-json '{"text":"from the CLI"}' --dir "$(node_dir req)"
grep -q "every signature verified" "$ASK_OUT" || fail "provenance not verified by the CLI: $(cat "$ASK_OUT")"

step "ask errors: no provider, oversized input, a provider's error answer"
ask_api req nobody.serves.this '{}' 5000 | json_ok 'd["id"] == "ask" and d["error"]["code"] == "no_provider"' || fail "no provider"
python3 -c 'import json; print(json.dumps({"t": "x" * 40000}))' >"$E2E_TMP/big.json"
ask_api req echo.text "$(cat "$E2E_TMP/big.json")" | json_ok 'd["error"]["code"] == "too_big"' || fail "oversized input"
provider_start refuser pa refuse.all fail
wait_until "$E2E_TIMEOUT" "the NA lists refuser" agent_listed refuse.all-"$(python3 -c 'import base64,sys; print(base64.b64decode(sys.argv[1])[:4].hex())' "$(node_key pa)")"
ask_api req refuse.all '{"q":1}' 10000 >"$E2E_TMP/ask2.json"
json_ok 'd["error"]["code"] == "provider_error" and d["error"]["provider_code"] == "invalid_input" and "refuses" in d["error"]["message"] and d["provenance"][-1]["action"] == "failed"' \
    <"$E2E_TMP/ask2.json" || fail "provider error: $(cat "$E2E_TMP/ask2.json")"

step "a provider that disconnects mid-request: the requester gets an error, not a hang"
provider_start quitter pb quit.midway disconnect quitter
ask_api req quit.midway '{}' 20000 >"$E2E_TMP/ask3.json"
json_ok 'not d["ok"] and d["error"]["code"] in ("no_provider", "provider_error") and "disconnected" in d["error"]["message"]' \
    <"$E2E_TMP/ask3.json" || fail "disconnect mid-request: $(cat "$E2E_TMP/ask3.json")"
wait_until "$E2E_TIMEOUT" "the closed connection's registration is gone" agent_unlisted quitter

step "a provider that stops answering: timeout answers, then the node withdraws it"
provider_start mute pb mute.cap silent mute
for i in 1 2 3; do
    ask_api req mute.cap '{}' 1500 >"$E2E_TMP/ask-mute.json"
    json_ok 'not d["ok"]' <"$E2E_TMP/ask-mute.json" || fail "silent provider answered? $(cat "$E2E_TMP/ask-mute.json")"
done
wait_until "$E2E_TIMEOUT" "the silent agent's registration is gone" agent_unlisted mute
grep -q '"stopped answering"' "$(node_dir pb)/node.log" || grep -q 'stopped answering' "$(node_dir pb)/node.log" || fail "pb did not log the withdrawal"

step "withdraw deletes the registration at once"
api pa '{"op":"hello","id":1,"versions":[2]}' '{"op":"provide","id":2,"capability":"brief.cap","agent_id":"brief"}' \
    '{"op":"withdraw","id":3,"capability":"brief.cap"}' >"$E2E_TMP/w.json"
json_ok 'd["ok"] and d["id"] == 3' < <(tail -1 "$E2E_TMP/w.json") || fail "withdraw: $(cat "$E2E_TMP/w.json")"
agent_unlisted brief || fail "brief still listed after withdraw"
step "a second connection cannot take a capability already provided on the node"
api pa '{"op":"hello","id":1,"versions":[2]}' '{"op":"provide","id":2,"capability":"echo.text"}' | tail -1 |
    json_ok 'd["error"]["code"] == "conflict"' || fail "conflict"

e2e_finish
