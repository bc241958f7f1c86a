# Helpers of the agent end-to-end tests (sourced after lib_e2e.sh): the mock LLM, agents
# started with `genesis-mesh agent run`, and waiting on the NA's registry.

GM_MOCK="${GM_MOCK:-$(dirname "$GM_BIN")/gm-mock-llm}"
[ -x "$GM_MOCK" ] || { echo "FAIL: gm-mock-llm not found next to $GM_BIN" >&2; exit 1; }
declare -A AGENT_PID=()

# mock_start KEY: starts the mock with --require-key KEY; sets LLM_* for the agents.
mock_start() {
    "$GM_MOCK" --port 0 --port-file "$E2E_TMP/mock.port" --require-key "$1" >"$E2E_TMP/mock.log" 2>&1 &
    E2E_PIDS+=("$!")
    wait_until "$E2E_TIMEOUT" "mock LLM wrote its port" test -s "$E2E_TMP/mock.port"
    export LLM_MODEL=gm-mock-model LLM_BASE_URL="http://127.0.0.1:$(tr -d '[:space:]' <"$E2E_TMP/mock.port")/v1"
}

# wait_full_mesh NODE...: every listed node routes to every other one.
wait_full_mesh() {
    local n m
    for n in "$@"; do
        for m in "$@"; do
            [ "$n" = "$m" ] || wait_until "$E2E_TIMEOUT" "$n routes to $m" has_route "$n" "$(node_key "$m")"
        done
    done
}

# agent_listed ID: the NA lists agent ID.
# Every output of the commands run here is also kept in $ASK_ALL (searched for leaked secrets).
ASK_ALL="$E2E_TMP/outputs-all.log"
# agents_json: the NA's listing as an enrolled node of this test sees it (discovery is for
# members: the node's key signs it), trying the node directories in turn (one may be revoked).
agents_json() {
    local d
    for d in "$E2E_TMP"/*/; do
        [ -f "$d/cert.json" ] || continue
        gm agents --dir "${d%/}" --na "$E2E_NA_URL" --json 2>>"$ASK_ALL" && return 0
    done
    return 1
}
agent_listed() { agents_json | tee -a "$ASK_ALL" | json_ok 'any(r["descriptor"]["agent_id"] == a[0] for r in d)' "$1"; }
agent_unlisted() { agents_json | tee -a "$ASK_ALL" | json_ok 'all(r["descriptor"]["agent_id"] != a[0] for r in d)' "$1"; }

# agent_start ID NODE CAPABILITY [agent run args...]: runs the agent on NODE's running node
# and waits until the NA lists it. Its log is $E2E_TMP/agent-ID.log.
agent_start() {
    local id="$1" node="$2" cap="$3"; shift 3
    "$GM_BIN" agent run --dir "$(node_dir "$node")" --agent-id "$id" --capability "$cap" \
        --log "$E2E_TMP/agent-$id.log" "$@" >>"$E2E_TMP/agent-$id.out" 2>&1 &
    AGENT_PID[$id]=$!
    E2E_PIDS+=("$!")
    wait_until "$E2E_TIMEOUT" "agent $id is registered" agent_listed "$id"
}

# agent_stop ID: SIGTERM (the agent unregisters) and wait for a clean exit.
agent_stop() {
    local id="$1" rc=0
    kill -TERM "${AGENT_PID[$id]}"
    wait "${AGENT_PID[$id]}" || rc=$?
    [ "$rc" -eq 0 ] || fail "agent $id exited with $rc on SIGTERM: $(tail -3 "$E2E_TMP/agent-$id.out")"
}

# ask_ok DESC REGEX ask-args...: genesis-mesh ask must succeed and print REGEX. Output in $ASK_OUT.
ASK_OUT="$E2E_TMP/ask.out"
ask_ok() {
    local desc="$1" re="$2"; shift 2
    step "$desc"
    gm ask "$@" >"$ASK_OUT" 2>&1 || fail "$desc: ask exited $?: $(cat "$ASK_OUT")"
    cat "$ASK_OUT" >>"$ASK_ALL"
    grep -Eq -- "$re" "$ASK_OUT" || fail "$desc: output does not match /$re/: $(cat "$ASK_OUT")"
}
# ask_fails DESC REGEX ask-args...: must exit 1 and print REGEX.
ask_fails() {
    local desc="$1" re="$2" rc=0; shift 2
    step "$desc"
    gm ask "$@" >"$ASK_OUT" 2>&1 || rc=$?
    cat "$ASK_OUT" >>"$ASK_ALL"
    [ "$rc" -eq 1 ] || fail "$desc: exit $rc, expected 1: $(cat "$ASK_OUT")"
    grep -Eq -- "$re" "$ASK_OUT" || fail "$desc: output does not match /$re/: $(cat "$ASK_OUT")"
}
