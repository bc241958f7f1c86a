#!/usr/bin/env bash
# `genesis-mesh dev up` builds the whole local agent network, runs the demo and the drills,
# and ends with a verdict line; it must pass, exit 0 and leave no process behind.
set -euo pipefail
GM_BIN="${GM_BIN:-${GM_BUILD:-build}/genesis-mesh}"
[ -x "$GM_BIN" ] || { echo "FAIL: genesis-mesh binary not found (set GM_BIN)" >&2; exit 1; }
T="$(mktemp -d "${TMPDIR:-/tmp}/gm-e2e-devup.XXXXXX")"
trap 'rm -rf "$T"' EXIT
unset LLM_MODEL LLM_API_KEY LLM_BASE_URL
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"

rc=0
"$GM_BIN" dev up --dir "$T/net" >"$T/out" 2>&1 || rc=$?
cat "$T/out"
[ "$rc" -eq 0 ] || { echo "FAIL: dev up exited $rc" >&2; exit 1; }
tail -1 "$T/out" | grep -Eq '^verdict: PASS' || { echo "FAIL: no PASS verdict" >&2; exit 1; }
for want in "8 of 8 nodes have a route to every other node" "4 of 4 agents registered" \
            "crm refused to start" "no node has a route to crm" "answered through repo-agent-b" \
            "crm is refused finance.report by rule 2" "access policy 2 reached 8 of 8 nodes; the last" \
            "crm's finance.report call now succeeds under policy 2"; do
    grep -q "$want" "$T/out" || { echo "FAIL: missing step: $want" >&2; exit 1; }
done
# every process it started is gone (they ran with --dir under $T)
if ps -eo args | grep -F -- "$T/net" | grep -v grep; then
    echo "FAIL: dev up left processes behind" >&2
    exit 1
fi
grep -rl "AddressSanitizer\|runtime error" "$T/net/logs" && { echo "FAIL: sanitizer report in the logs" >&2; exit 1; }
echo "PASS"
