#!/usr/bin/env bash
# The LLM agent against a provider that behaves like real ones (gm-mock-llm's modes), end to end:
# rate limits and 5xx retried within the requester's deadline, a dropped connection retried, the
# provider's own error shown (key redacted), empty and truncated answers marked in the output and
# the signed provenance, an answer over 32 KiB cut with a marker instead of lost, terminal escape
# sequences never reaching the requester's terminal, and a planner whose nested llm.chat gets the
# time the requester allowed (a 6 s model inside a 20 s planner.answer).
. "$(dirname "$0")/lib_e2e.sh"
. "$(dirname "$0")/agents_e2e_lib.sh"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
KEY="sk-test-llm-e2e-5c1d9a7b3e"

step "agent run checks its option table, then execs the shipped agent programs; usage errors are clear"
run_usage() { # EXPECTED-REGEX agent-run-args...: exit 2 and the message
    local re="$1" rc=0; shift
    gm agent run "$@" >"$E2E_TMP/run.out" 2>&1 || rc=$?
    [ "$rc" -eq 2 ] || fail "agent run $*: exit $rc, expected 2: $(cat "$E2E_TMP/run.out")"
    grep -Eq -- "$re" "$E2E_TMP/run.out" || fail "agent run $*: no /$re/: $(cat "$E2E_TMP/run.out")"
}
run_usage "no shipped agent serves 'nothing.here'" --capability nothing.here --agent-id a
run_usage "gm-agent-repo: --fixture FILE is required" --capability repo:summary --agent-id a
run_usage "agent run: --sub-timeout-ms: 'abc' is not a whole number" --capability planner.answer --agent-id a --sub-timeout-ms abc
run_usage "agent run: --ttl: 0 is out of range \\(expected 1..3600\\)" --capability llm.chat --agent-id a --ttl 0
run_usage "gm-agent-llm: serves llm.chat, not repo.summary" --capability repo.summary --capability llm.chat --agent-id a
gm agent run --capability llm.chat --help | grep -q "^usage: genesis-mesh agent run" || fail "agent run --help shows no usage"
"$(dirname "$GM_BIN")/gm-agent-llm" --help | grep -q "^usage: gm-agent-llm" || fail "gm-agent-llm --help shows no usage"

step "network: NA, a requester and three provider nodes"
e2e_na_start
for n in researcher repo llm planner; do e2e_node_join "$n" role:service:agent; done
e2e_node_start researcher
for n in repo llm planner; do e2e_node_start "$n" --peer "$(node_addr researcher)"; done
wait_full_mesh researcher repo llm planner
mock_start "$KEY"
R="$(node_dir researcher)"
agent_start repo-a repo repo.summary --fixture "$SRC/examples/repo-a.json"
LLM_API_KEY="$KEY" LLM_MAX_RETRIES=3 agent_start llm-1 llm llm.chat
agent_start planner-1 planner planner.answer

step "429 with Retry-After, then an answer; the provenance says how many attempts"
ask_ok "rate limited twice" "^answer: \[mock:gm-mock-model\] busy" llm.chat "busy __mock_fail_2_429__ __mock_retry_after_1__" --dir "$R"
grep -Eq "llm-1 +executed +llm.chat +chat completion by model gm-mock-model \([0-9]+ bytes, 3 attempts\)" "$ASK_OUT" ||
    fail "attempts not in the provenance: $(cat "$ASK_OUT")"
ask_ok "503 twice" "^answer: " llm.chat "overloaded __mock_fail_2_503__" --dir "$R"
ask_ok "a dropped connection" "^answer: " llm.chat "hang up __mock_drop_1__" --dir "$R"

step "a Retry-After past the requester's deadline: a clear error now, with the provider's words"
ask_fails "no wait past the deadline" "not retried: waiting 60000 ms would pass the deadline.*Rate limit reached" \
    llm.chat "later __mock_fail_9_429__ __mock_retry_after_60__" --dir "$R" --timeout-ms 4000

step "empty and truncated answers are marked, in the output and in the signed step"
ask_ok "empty" "note: the model returned an EMPTY answer" llm.chat "__mock_empty__" --dir "$R"
grep -q "EMPTY answer (finish_reason stop)" "$ASK_OUT" || fail "empty answer not in the provenance: $(cat "$ASK_OUT")"
gm ask llm.chat "__mock_empty__" --dir "$R" --json | json_ok 'd["output"]["empty"] is True and d["output"]["text"] == ""' ||
    fail "empty answer not marked in the output"
ask_ok "finish_reason length" "note: the answer is TRUNCATED: the model stopped at its token limit" \
    llm.chat "a long story __mock_length__" --dir "$R"
grep -q "TRUNCATED: the model stopped at its token limit (finish_reason length)" "$ASK_OUT" ||
    fail "truncation not in the provenance: $(cat "$ASK_OUT")"

step "an answer over 32 KiB is cut with a marker, not thrown away"
gm ask llm.chat "__mock_big_40__" --dir "$R" --json >"$E2E_TMP/big.json" || fail "big answer: $(head -c 400 "$E2E_TMP/big.json")"
json_ok 'd["output"]["truncated"] == "size" and "[truncated by genesis-mesh: " in d["output"]["text"] and " of 40960 bytes kept]" in d["output"]["text"] and len(d["output"]["text"]) > 30000' \
    <"$E2E_TMP/big.json" || fail "big answer not cut as expected"
json_ok 'any("TRUNCATED to" in s["detail"] and "of 40960 bytes" in s["detail"] for s in d["provenance"])' <"$E2E_TMP/big.json" ||
    fail "cut not in the provenance"

step "terminal escape sequences from the model never reach the terminal"
ask_ok "escapes shown, not executed" 'answer: \[mock\] \\x1b\[2J\\x1b\]0;pwned\\x07visible' llm.chat "__mock_escape__" --dir "$R"
if grep -q $'\x1b\|\x07\|\xc2\x9b' "$ASK_OUT"; then fail "a control character reached the output: $(od -c "$ASK_OUT" | head)"; fi
grep -q "^second line" "$ASK_OUT" || fail "the answer's second line is missing"

step "the provider's error text, key redacted; non-UTF-8 named as such"
ask_fails "non-UTF-8 answer" "not valid UTF-8" llm.chat "__mock_badutf8__" --dir "$R"

step "nested deadline: a 6 s model inside a 20 s planner.answer"
ask_ok "slow model, patient requester" "provider: planner-1" planner.answer "slow __mock_sleep_6000__" --dir "$R" --timeout-ms 20000
grep -Eq "llm-1 +executed +llm.chat" "$ASK_OUT" || fail "llm.chat step missing: $(cat "$ASK_OUT")"

if grep -rIl -e "$KEY" "$E2E_TMP" --exclude=mock.log 2>/dev/null; then
    fail "the API key appears in the files above"
fi
e2e_finish
