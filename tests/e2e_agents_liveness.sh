#!/usr/bin/env bash
# Dead providers are skipped fast and disappear: a provider killed with SIGKILL while registered
# is not a requester's problem. For an agent on the local API (--exec), its node withdraws the
# registration as soon as the connection closes; for an agent on the provider loop (shipped
# agents), its node answers `unavailable` at once to requests nobody serves any more (counted in
# the agents_unavailable metric), so the requester fails over in one round trip; a provider
# whose node is gone is shown unreachable by `agents` and skipped (no route). No timing is
# asserted: each call must land on the live provider.
. "$(dirname "$0")/lib_e2e.sh"
. "$(dirname "$0")/agents_e2e_lib.sh"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PY="$(dirname "$0")/local_api_client.py"
ask_api() { local n="$1"; shift; python3 "$PY" ask "$(node_dir "$n")/node.sock" "$@"; }
cat >"$E2E_TMP/who.py" <<'PYEOF'
import json, sys
json.load(sys.stdin)
print(json.dumps({"served_by": sys.argv[1]}))
PYEOF

step "network: NA, a hub, a requester and two provider nodes"
e2e_na_start
for n in hub req pa pb; do e2e_node_join "$n" role:service:agent; done
e2e_node_start hub
for n in req pa pb; do e2e_node_start "$n" --peer "$(node_addr hub)"; done
wait_full_mesh req pa pb

step "two --exec providers of live.cap; a-first is the first choice"
agent_start a-first pa live.cap --exec "python3 $E2E_TMP/who.py a-first"
agent_start b-second pb live.cap --exec "python3 $E2E_TMP/who.py b-second"
ask_api req live.cap '{}' 10000 | json_ok 'd["ok"] and d["provider"]["agent_id"] == "a-first"' || fail "a-first is not chosen first"
gm agents --dir "$(node_dir req)" --capability live.cap --json >"$E2E_TMP/agents.json"
json_ok '[r["live"] for r in d] == ["reachable", "reachable"]' <"$E2E_TMP/agents.json" || fail "liveness: $(cat "$E2E_TMP/agents.json")"
gm agents --dir "$(node_dir pa)" --capability live.cap | grep -Eq "^a-first .* self " || fail "agents does not show self"

step "SIGKILL a-first while registered: the next call is served by b-second, a-first's registration goes"
kill -KILL "${AGENT_PID[a-first]}"
ask_api req live.cap '{}' 10000 >"$E2E_TMP/a.json"
json_ok 'd["ok"] and d["provider"]["agent_id"] == "b-second" and d["output"] == {"served_by": "b-second"}' <"$E2E_TMP/a.json" ||
    fail "after SIGKILL: $(cat "$E2E_TMP/a.json")"
wait_until "$E2E_TIMEOUT" "a-first left the registry without waiting for its TTL" agent_unlisted a-first

step "provider-loop agents (shipped repo agent): SIGKILL the first choice, its node answers unavailable at once"
agent_start l-first pa legacy.cap --fixture "$SRC/examples/repo-a.json"
agent_start l-second pb legacy.cap --fixture "$SRC/examples/repo-b.json"
ask_api req legacy.cap '{"question":"q"}' 10000 | json_ok 'd["ok"] and d["provider"]["agent_id"] == "l-first"' || fail "l-first first"
before="$(node_metric pa '^agents_unavailable$')"
kill -KILL "${AGENT_PID[l-first]}"
wait_until "$E2E_TIMEOUT" "pa saw l-first's connection close" bash -c "! kill -0 ${AGENT_PID[l-first]} 2>/dev/null"
ask_api req legacy.cap '{"question":"q"}' 10000 >"$E2E_TMP/a.json"
json_ok 'd["ok"] and d["provider"]["agent_id"] == "l-second"' <"$E2E_TMP/a.json" || fail "legacy failover: $(cat "$E2E_TMP/a.json")"
after="$(node_metric pa '^agents_unavailable$')"
[ "$after" -gt "$before" ] || fail "pa did not answer unavailable for the dead agent ($before -> $after)"
ask_ok "the CLI requester fails over the same way" "provider: l-second" legacy.cap "q" --dir "$(node_dir req)"

step "a provider whose node is gone: agents shows it unreachable, calls skip it"
kill -KILL "${NODE_PID[pa]}"
wait_until "$E2E_TIMEOUT" "req lost its route to pa" no_route req "$(node_key pa)"
gm agents --dir "$(node_dir req)" --capability legacy.cap --json >"$E2E_TMP/agents.json"
json_ok '{r["descriptor"]["agent_id"]: r["live"] for r in d} == {"l-first": "unreachable", "l-second": "reachable"}' \
    <"$E2E_TMP/agents.json" || fail "liveness after pa died: $(cat "$E2E_TMP/agents.json")"
ask_api req legacy.cap '{"question":"q"}' 10000 | json_ok 'd["ok"] and d["provider"]["agent_id"] == "l-second"' ||
    fail "the unreachable provider was not skipped"

e2e_finish
