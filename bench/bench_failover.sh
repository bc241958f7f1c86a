#!/usr/bin/env bash
# Failover figures on real processes (release build; never a test): what a requester pays when
# its first-choice provider was SIGKILLed while still registered. A hub, a requester, two
# provider nodes (pa, pb), two providers of one capability, the first choice on pa. Prints the
# p50 (median of BENCH_RUNS runs of BENCH_N calls, bench_agents --invoke: discovery, the
# requester's own checks, the call, failover) of a normal call, of a call whose first choice
# was SIGKILLed, and their ratio, for:
#   1. provider-loop agents (the shipped repo agent): the dead agent's registration stays until
#      its TTL; its node answers `unavailable` at once and the requester fails over;
#   2. local-API agents (agent run --exec): the node withdraws the registration when the
#      agent's connection closes, so requesters no longer see it.
# Before the liveness work, case 1 cost every call the provider's full timeout (10 s here).
# Set BENCH_CASES=1 or 2 to run one case only.
# Knobs: BENCH_RUNS (3), BENCH_N (100). Run via bench/run.sh failover, or with GM_BIN set.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ -z "${GM_BIN:-}" ]; then
    GM_BUILD="${GM_BUILD:-$here/../build-bench}"
    GM_BIN="$GM_BUILD/genesis-mesh"
fi
GM_BUILD="${GM_BUILD:-$(dirname "$GM_BIN")}"
export GM_BIN GM_BUILD
E2E_LOG_LEVEL=warn
. "$here/../tests/lib_e2e.sh"
. "$here/../tests/agents_e2e_lib.sh"
unset ASAN_OPTIONS UBSAN_OPTIONS
RUNS="${BENCH_RUNS:-3}"
N="${BENCH_N:-100}"
BENCH="$GM_BUILD/bench/bench_agents"

e2e_na_start >/dev/null 2>&1
for n in hub req pa pb; do e2e_node_join "$n" role:service:agent; done
e2e_node_start hub
for n in req pa pb; do e2e_node_start "$n" --peer "$(node_addr hub)"; done
for m in pa pb; do wait_until 60 "req routes to $m" has_route req "$(node_key "$m")"; done
R="$(node_dir req)"

# p50 CAP: the median p50 in ms that bench_agents prints for CAP (the whole line on stderr).
p50() {
    local line
    line="$("$BENCH" --dir "$R" --invoke "$1" --input-json '{"question":"q"}' --n "$N" --runs "$RUNS")"
    echo "  $line" >&2
    sed -E 's/.*p50 +([0-9.]+) ms.*/\1/' <<<"$line"
}
report() {
    python3 -c 'import sys; a, b = float(sys.argv[2]), float(sys.argv[3]); print("%-34s normal p50 %.2f ms   first choice SIGKILLed p50 %.2f ms   ratio %.2f" % (sys.argv[1], a, b, b / a))' "$@"
}

if [ "${BENCH_CASES:-12}" != 2 ]; then
echo "1. provider-loop agents (registration stays until its TTL):"
agent_start l-first pa legacy.cap --fixture "$here/../examples/repo-a.json"
agent_start l-second pb legacy.cap --fixture "$here/../examples/repo-b.json"
normal="$(p50 legacy.cap)"
kill -KILL "${AGENT_PID[l-first]}"
wait "${AGENT_PID[l-first]}" 2>/dev/null || true
agent_listed l-first || echo "  (l-first is no longer listed: the figure below is not the worst case)" >&2
dead="$(p50 legacy.cap)"
report "provider loop (repo agent)" "$normal" "$dead"
fi

[ "${BENCH_CASES:-12}" = 1 ] && { e2e_finish 2>/dev/null; exit 0; }
echo "2. local-API agents (--exec; the node withdraws a closed connection's registration):"
# `cat` answers with the input: the figure is the mesh and the agent, not a program's startup.
agent_start x-first pa exec.cap --exec cat
agent_start x-second pb exec.cap --exec cat
normal="$(p50 exec.cap)"
kill -KILL "${AGENT_PID[x-first]}"
wait "${AGENT_PID[x-first]}" 2>/dev/null || true
dead="$(p50 exec.cap)"
report "local API (--exec cat, a process per call)" "$normal" "$dead"
e2e_finish 2>/dev/null
