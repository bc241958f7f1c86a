#!/usr/bin/env bash
# Agents on the mesh, end to end with real processes: registry (POST, GET by capability with
# the colon form, DELETE on clean shutdown), a requester configured with nothing but its
# node directory (NA address) and a capability, the planner composing repo.summary and
# llm.chat with verified provenance, clear errors (unknown capability, oversized input,
# provider failure), and the LLM API key never appearing in any output or log.
. "$(dirname "$0")/lib_e2e.sh"
. "$(dirname "$0")/agents_e2e_lib.sh"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
SECRET="sk-test-SECRET-7f3a9c1e5b"
WRONG="sk-test-SECRET-wrong-d41d8c"

step "network: NA, a hub and five nodes"
e2e_na_start
for n in hub researcher ra rb llm planner; do e2e_node_join "$n" role:service:agent; done
e2e_node_start hub
for n in researcher ra rb llm planner; do e2e_node_start "$n" --peer "$(node_addr hub)"; done
for n in researcher ra rb llm planner; do wait_until "$E2E_TIMEOUT" "hub routes to $n" has_route hub "$(node_key "$n")"; done

step "agents: two repo agents, an LLM agent (mock, API key required), a planner"
mock_start "$SECRET"
agent_start repo-agent-a ra repo.summary --fixture "$SRC/examples/repo-a.json"
agent_start repo-agent-b rb repo:summary --fixture "$SRC/examples/repo-b.json"
LLM_API_KEY="$SECRET" agent_start llm-1 llm llm:chat
agent_start planner-1 planner planner.answer
for n in researcher ra rb llm planner; do
    for m in ra rb llm planner; do
        [ "$n" = "$m" ] || wait_until "$E2E_TIMEOUT" "$n routes to $m" has_route "$n" "$(node_key "$m")"
    done
done

step "the requester knows only its NA address (node.json) and a capability"
node_json="$(node_dir researcher)/node.json"
json_ok 'set(d.keys()) <= {"na_url", "peers"}' <"$node_json" || fail "node.json holds more than the NA address: $(cat "$node_json")"
ask_ok "researcher asks planner.answer" "provider: planner-1" \
    planner.answer "Summarize Genesis Mesh and explain why discovery matters." --dir "$(node_dir researcher)"
grep -Eq "repo-agent-a +executed +repo.summary" "$ASK_OUT" || fail "repo.summary step missing: $(cat "$ASK_OUT")"
grep -Eq "llm-1 +executed +llm.chat" "$ASK_OUT" || fail "llm.chat step missing"
grep -Eq "planner-1 +combined" "$ASK_OUT" || fail "combined step missing"
grep -q "every signature verified" "$ASK_OUT" || fail "provenance not verified"
grep -q "^answer: \[mock:gm-mock-model\]" "$ASK_OUT" || fail "answer missing"
gm ask planner.answer "why" --dir "$(node_dir researcher)" --json >"$E2E_TMP/ask.json" 2>>"$ASK_ALL" || fail "ask --json"
json_ok 'd["provider"] == "planner-1" and len(d["provenance"]) >= 6 and d["output"]["sources"][0]["agent"] == "repo-agent-a"' \
    <"$E2E_TMP/ask.json" || fail "ask --json: $(cat "$E2E_TMP/ask.json")"

step "capability names: the colon form is the same capability"
ask_ok "ask repo:summary" "provider: repo-agent-a" repo:summary "what is it?" --dir "$(node_dir researcher)"
gm agents --dir "$(node_dir researcher)" --capability llm:chat --json >"$E2E_TMP/agents.json" 2>>"$ASK_ALL"
json_ok 'len(d) == 1 and d[0]["descriptor"]["agent_id"] == "llm-1" and d[0]["check"] == "verified" and d[0]["certificate"]["node_public_key"] == d[0]["descriptor"]["node_public_key"]' \
    <"$E2E_TMP/agents.json" || fail "agents --capability llm:chat: $(cat "$E2E_TMP/agents.json")"
gm agents --dir "$(node_dir researcher)" --capability repo.summary --json 2>>"$ASK_ALL" | tee -a "$ASK_ALL" |
    json_ok '[r["descriptor"]["agent_id"] for r in d] == ["repo-agent-a", "repo-agent-b"]' || fail "exact tag match"

step "a provider answers on its subscription: no local-API connection per answer"
accepted_before="$(node_metric ra '^api_accepted$')"
frames_before="$(node_metric ra '^api_frames_in$')"
workers_before="$(grep -c '"event":"worker_started"' "$E2E_TMP/agent-repo-agent-a.log" || true)"
answered_before="$(grep -c '"event":"answered".*repo.summary from .*(request ' "$E2E_TMP/agent-repo-agent-a.log" || true)"
for i in 1 2 3; do ask_ok "ask repo.summary ($i)" "provider: repo-agent-a" repo.summary "q$i" --dir "$(node_dir researcher)"; done
# requests one after another are run by the worker threads that ran the earlier ones (at
# most one more, should the last worker not have gone back to wait when the next one came)
[ "$workers_before" -ge 1 ] || fail "repo-agent-a logged no worker_started for its earlier requests"
[ "$(grep -c '"event":"worker_started"' "$E2E_TMP/agent-repo-agent-a.log")" -le $((workers_before + 1)) ] ||
    fail "repo-agent-a started a thread for requests made one after another: $(grep worker_started "$E2E_TMP/agent-repo-agent-a.log")"
# one line per call at info, written after the answer left (the arrival is logged at debug only)
[ "$(grep -c '"event":"answered".*repo.summary from .*(request ' "$E2E_TMP/agent-repo-agent-a.log")" -eq \
    $((answered_before + 3)) ] || fail "repo-agent-a did not log one answered line per call"
! grep -q '"event":"request"' "$E2E_TMP/agent-repo-agent-a.log" ||
    fail "repo-agent-a logged the arrival of a request at info"
accepted_after="$(node_metric ra '^api_accepted$')"
frames_after="$(node_metric ra '^api_frames_in$')"
# the only new connections to ra's node are two status reads of node_metric itself
[ $((accepted_after - accepted_before)) -le 2 ] ||
    fail "ra's node accepted $((accepted_after - accepted_before)) local-API connections for 3 answers"
[ $((frames_after - frames_before)) -ge 3 ] || fail "the 3 answers were not sent as binary frames"

step "a requester keeps its local-API connection from call to call (parked between them)"
accepted_before="$(node_metric planner '^api_accepted$')"
subs_before="$(node_metric planner '^api_subscribes$')"
unsubs_before="$(node_metric planner '^api_unsubscribes$')"
for i in 1 2 3; do ask_ok "ask planner.answer ($i)" "provider: planner-1" planner.answer "p$i" --dir "$(node_dir researcher)"; done
accepted_after="$(node_metric planner '^api_accepted$')"
# Within one answer the two nested calls share the connection subscribed: one subscribe, and one
# park after the answer left (not one of each per nested call: that would be 6 and 6).
wait_until "$E2E_TIMEOUT" "the planner parked its connection after each answer" \
    metric_above planner '^api_unsubscribes$' $((unsubs_before + 2))
subs=$(($(node_metric planner '^api_subscribes$') - subs_before))
unsubs=$(($(node_metric planner '^api_unsubscribes$') - unsubs_before))
[ "$subs" -eq 3 ] && [ "$unsubs" -eq 3 ] ||
    fail "planner's node saw $subs subscribes and $unsubs unsubscribes for 3 answers (want 3 and 3)"
# 6 nested calls: at most one connection of the planner's worker thread (a second worker, should
# one start), plus the two status reads of node_metric itself; a connection per call would be 6 more
[ $((accepted_after - accepted_before)) -le 4 ] ||
    fail "planner's node accepted $((accepted_after - accepted_before)) local-API connections for 6 nested calls"

step "a parked connection whose node restarted: the next call opens a new one, no call fails"
e2e_node_stop planner
e2e_node_start planner --peer "$(node_addr hub)"
for m in ra llm; do wait_until "$E2E_TIMEOUT" "planner routes to $m again" has_route planner "$(node_key "$m")"; done
wait_until "$E2E_TIMEOUT" "researcher routes to planner again" has_route researcher "$(node_key planner)"
wait_until "$E2E_TIMEOUT" "planner-1 subscribed again" grep -q '"event":"resubscribed"' "$E2E_TMP/agent-planner-1.log"
# The first message on an end-to-end session the restarted node lost is dropped while a new
# session is agreed (e2e_message sends until one arrives): settle the three sessions first.
for n in researcher ra llm; do e2e_message "$n" planner warm "session from $n"; done
# twice: the planner's threads that made the earlier nested calls each parked a connection
for i in 1 2; do
    ask_ok "ask planner.answer after the restart ($i)" "provider: planner-1" planner.answer "after $i" --dir "$(node_dir researcher)"
    ! grep -Eq " failed " "$ASK_OUT" || fail "a nested call failed on a dead parked connection: $(cat "$ASK_OUT")"
done

step "clear errors, never a hang"
ask_fails "unknown capability" "no usable provider of nothing.here \(0 listed" nothing.here "x" --dir "$(node_dir researcher)"
python3 -c 'import json; print(json.dumps({"prompt": "x" * 40000}))' >"$E2E_TMP/big.json"
ask_fails "oversized input" "exceeds the 32768-byte limit" llm.chat --input-json "$(cat "$E2E_TMP/big.json")" --dir "$(node_dir researcher)"
ask_fails "bad input for the capability" "invalid_input" llm.chat --input-json '{"nope":1}' --dir "$(node_dir researcher)"
ask_fails "provider error is reported" "LLM provider .* returned HTTP 500" llm.chat "__mock_error_500__" --dir "$(node_dir researcher)"

step "DELETE on clean shutdown: llm-1 leaves the registry"
agent_stop llm-1
agent_unlisted llm-1 || fail "llm-1 still listed after a clean shutdown"
grep -q '"event":"unregistered"' "$E2E_TMP/agent-llm-1.log" || fail "llm-1 did not log its unregistration"

step "a provider with a wrong API key: the mock quotes it in its 401, nobody repeats it"
LLM_API_KEY="$WRONG" agent_start llm-bad llm llm.chat
ask_fails "llm.chat with a wrong key fails clearly" "HTTP 401 \(authentication failed; check LLM_API_KEY\)" \
    llm.chat "hello" --dir "$(node_dir researcher)"
ask_fails "the planner reports the failure" "llm.chat" planner.answer "q" --dir "$(node_dir researcher)"
agent_stop llm-bad
step "no API key in any file: every command's output and stderr, logs, the NA database (binary too)"
# The search must see binary files: a canary (the key between NUL bytes) is found, then removed.
printf 'x\0%s\0y' "$SECRET" >"$E2E_TMP/canary.bin"
grep -rla -e "$SECRET" "$E2E_TMP" | grep -qx "$E2E_TMP/canary.bin" || fail "the leak search does not read binary files"
rm -f "$E2E_TMP/canary.bin"
[ -s "$ASK_ALL" ] && [ -s "$E2E_NET/na.db" ] || fail "outputs or the NA database missing: nothing to search"
# The mock is the LLM provider: it is given the key, and quotes the wrong one in its 401.
if grep -rla -e "$SECRET" -e "$WRONG" "$E2E_TMP" --exclude=mock.log; then
    fail "an API key appears in the files above"
fi

e2e_finish
