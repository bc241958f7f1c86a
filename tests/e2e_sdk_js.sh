#!/usr/bin/env bash
# The JavaScript SDK (sdk/js, ESM, no dependencies) against a real NA and real nodes, with
# Debian's Node.js: a provider serves sdk.js; a requester asks by capability alone and gets the
# output, the provider and the provenance verified by its node; a throwing handler is an error
# answer and the provider keeps serving; a handler slower than the deadline; an oversized answer
# refused with too_big; errors with the protocol's codes; the node going away is a clear
# ConnectionLost for the provider (serve() rejects) and the requester. The checks are
# sdk/js/test/mesh_check.mjs; index.d.ts is checked to declare every export.
. "$(dirname "$0")/lib_e2e.sh"
. "$(dirname "$0")/agents_e2e_lib.sh"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
command -v node >/dev/null || fail "node (Node.js) is not installed: run scripts/deps.sh"
CHECK="$SRC/sdk/js/test/mesh_check.mjs"
sdk() { node "$CHECK" "$@"; }

step "index.d.ts declares every export of index.js"
node --input-type=module -e '
import * as m from "'"$SRC"'/sdk/js/index.js";
import { readFileSync } from "node:fs";
const d = readFileSync("'"$SRC"'/sdk/js/index.d.ts", "utf8");
const missing = Object.keys(m).filter((k) => !new RegExp(`export declare (const|class|function) ${k}\\b`).test(d));
if (missing.length) { console.log("undeclared: " + missing.join(", ")); process.exit(1); }' >"$E2E_TMP/dts.out" 2>&1 ||
    fail "index.d.ts: $(cat "$E2E_TMP/dts.out")"

step "network: NA, a hub, a requester and a provider node"
e2e_na_start
for n in hub req pa; do e2e_node_join "$n" role:service:agent; done
e2e_node_start hub
for n in req pa; do e2e_node_start "$n" --peer "$(node_addr hub)"; done
wait_full_mesh req pa

step "a JavaScript provider on pa"
sdk provide "$(node_dir pa)" "$E2E_TMP/ready" >"$E2E_TMP/prov.out" 2>&1 &
PROV=$!; E2E_PIDS+=("$PROV")
wait_until "$E2E_TIMEOUT" "the provider provided sdk.js" test -s "$E2E_TMP/ready"
gm agents --dir "$(node_dir req)" --capability sdk.js --json >"$E2E_TMP/agents.json" 2>>"$ASK_ALL"
json_ok 'd[0]["descriptor"]["agent_id"] == "js-sdk-test" and d[0]["check"] == "verified" and d[0]["descriptor"]["metadata"]["description"] == "the JS SDK'"'"'s test provider"' \
    <"$E2E_TMP/agents.json" || fail "descriptor: $(cat "$E2E_TMP/agents.json")"

step "ask, error answers, deadlines, sizes (sdk/js/test/mesh_check.mjs)"
sdk check "$(node_dir req)" "$(node_key pa)" >"$E2E_TMP/check.out" 2>&1 || fail "mesh_check: $(cat "$E2E_TMP/check.out")"
cat "$E2E_TMP/check.out" >&2
[ "$(grep -c '^PASS' "$E2E_TMP/check.out")" -eq 5 ] || fail "not every check passed: $(cat "$E2E_TMP/check.out")"
grep -q "TypeError: the handler broke on purpose" "$E2E_TMP/prov.out" || fail "the provider did not log the handler's error"
kill -0 "$PROV" || fail "the provider died"

step "the node going away: the provider's serve() rejects with ConnectionLost"
e2e_node_stop pa
rc=0; wait "$PROV" || rc=$?
[ "$rc" -eq 3 ] && grep -q "ConnectionLost: unavailable: the node closed the connection" "$E2E_TMP/prov.out" ||
    fail "provider on a stopped node: exit $rc: $(cat "$E2E_TMP/prov.out")"

step "the node going away: a requester's ask rejects with ConnectionLost"
sdk lost "$(node_dir req)" "$E2E_TMP/lost-ready" "$E2E_TMP/lost-go" >"$E2E_TMP/lost.out" 2>&1 &
LOST=$!; E2E_PIDS+=("$LOST")
wait_until "$E2E_TIMEOUT" "the requester connected" test -s "$E2E_TMP/lost-ready"
e2e_node_stop req
touch "$E2E_TMP/lost-go"
rc=0; wait "$LOST" || rc=$?
[ "$rc" -eq 0 ] && [ "$(grep -c '^PASS' "$E2E_TMP/lost.out")" -eq 2 ] || fail "requester on a stopped node: $rc $(cat "$E2E_TMP/lost.out")"
cat "$E2E_TMP/lost.out" >&2

e2e_finish
