#!/usr/bin/env bash
# Providers that misbehave or get revoked: a requester gets a clear answer or error, never
# a hang; a provider answering garbage, forging its provenance, signing steps without
# attaching a certificate, or staying silent is skipped (failover to the next), a revoked
# provider is never selected again and cannot register.
. "$(dirname "$0")/lib_e2e.sh"
. "$(dirname "$0")/agents_e2e_lib.sh"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
FX_A="$SRC/examples/repo-a.json"
FX_B="$SRC/examples/repo-b.json"

step "network: NA, a hub, a researcher and four provider nodes"
e2e_na_start
for n in hub researcher ra rb bad planner; do e2e_node_join "$n" role:service:agent; done
e2e_node_start hub
for n in researcher ra rb bad planner; do e2e_node_start "$n" --peer "$(node_addr hub)"; done
mock_start "sk-test-failover"
for n in researcher ra rb bad planner; do
    for m in researcher ra rb bad planner; do
        [ "$n" = "$m" ] || wait_until "$E2E_TIMEOUT" "$n routes to $m" has_route "$n" "$(node_key "$m")"
    done
done
agent_start repo-agent-a ra repo.summary --fixture "$FX_A"
agent_start repo-agent-b rb repo.summary --fixture "$FX_B"
R="$(node_dir researcher)"

# Each faulty agent's id sorts before repo-agent-a, so it is selected first.
for fault in garbage forge uncertified silent; do
    step "a provider that is $fault"
    agent_start "a-$fault" bad repo.summary --fixture "$FX_A" --fault "$fault"
    start=$(date +%s)
    ask_ok "ask with a $fault provider listed first" "provider: repo-agent-a" repo.summary "q" --dir "$R" --timeout-ms 1500
    [ $(( $(date +%s) - start )) -le 8 ] || fail "ask took too long with a $fault provider"
    case "$fault" in
        garbage) grep -q "a-garbage: provider .* answered garbage" "$ASK_OUT" || fail "no garbage report: $(cat "$ASK_OUT")" ;;
        forge) grep -q "a-forge: rejected answer .* not signed by its signer" "$ASK_OUT" || fail "forgery not reported: $(cat "$ASK_OUT")" ;;
        uncertified) grep -q "a-uncertified: rejected answer .* holds no certificate in the answer" "$ASK_OUT" || fail "uncertified signer not reported: $(cat "$ASK_OUT")" ;;
        silent) grep -q "a-silent: provider .* did not answer repo.summary before the deadline" "$ASK_OUT" || fail "no timeout report: $(cat "$ASK_OUT")" ;;
    esac
    grep -q "failing over" "$ASK_OUT" || fail "failover not shown"
    agent_stop "a-$fault"
done

step "only a silent provider: a clear timeout error, not a hang"
agent_start a-silent bad repo.summary --fixture "$FX_A" --fault silent
agent_stop repo-agent-a
agent_stop repo-agent-b
start=$(date +%s)
ask_fails "ask times out" "no provider of repo.summary answered|no usable provider of repo.summary.*did not answer" \
    repo.summary "q" --dir "$R" --timeout-ms 1000
[ $(( $(date +%s) - start )) -le 8 ] || fail "ask took too long"
agent_stop a-silent
agent_start repo-agent-a ra repo.summary --fixture "$FX_A"
agent_start repo-agent-b rb repo.summary --fixture "$FX_B"
agent_start planner-1 planner planner.answer --sub-timeout-ms 3000
LLM_API_KEY="sk-test-failover" agent_start llm-1 bad llm.chat

step "planner before the revocation uses repo-agent-a"
ask_ok "planner answer" "repo-agent-a +executed" planner.answer "Why does discovery matter?" --dir "$R"

step "revoke repo-agent-a's node"
e2e_admin revoke --node-key "$(node_key ra)" --reason key_compromise >/dev/null
wait_until "$E2E_TIMEOUT" "the NA drops repo-agent-a" agent_unlisted repo-agent-a
ask_ok "planner fails over to repo-agent-b" "repo-agent-b +executed" planner.answer "Why does discovery matter?" --dir "$R"
grep -q "repo-agent-a +executed" "$ASK_OUT" && fail "revoked repo-agent-a was used"
grep -q "failover: repo-agent-a, which served repo.summary before" "$ASK_OUT" || fail "failover not in the provenance: $(cat "$ASK_OUT")"
ask_ok "direct call never selects the revoked provider" "provider: repo-agent-b" repo.summary "q" --dir "$R"

step "a revoked key cannot register again"
# ra's node stops by itself (status 1) once it learns it is revoked. A copy that cannot hear of
# the revocation (no CRL, NA polling off) keeps running, so the agent gets as far as the NA.
wait_until "$E2E_TIMEOUT" "ra's node stopped by itself" node_exited ra
rc=0; e2e_node_stop ra || rc=$?
[ "$rc" -eq 1 ] || fail "ra's revoked node exited with status $rc (want 1): $(tail -3 "$(node_dir ra)/node.out")"
rm -f "$(node_dir ra)/crl.json"
e2e_node_start ra --crl-poll-ms -1 --crl-watch-s -1
rc=0
"$GM_BIN" agent run --dir "$(node_dir ra)" --agent-id repo-agent-a2 --capability repo.summary --fixture "$FX_A" \
    >"$E2E_TMP/revoked.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "registration by a revoked key: exit $rc"
grep -q "no valid, unrevoked certificate" "$E2E_TMP/revoked.out" || fail "unclear refusal: $(cat "$E2E_TMP/revoked.out")"

e2e_finish
