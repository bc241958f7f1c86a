#!/usr/bin/env bash
# The Python SDK (sdk/python, package genesis_mesh) against a real NA and real nodes: it installs
# offline with pip (setuptools only, no index); a sync provider and an asyncio provider serve
# capabilities; a requester asks by capability alone and gets the output, the provider and the
# provenance verified by its node; a throwing handler is an error answer and the provider keeps
# serving; a handler slower than the deadline; an oversized answer refused with too_big; errors
# are exceptions with the protocol's codes; the node going away is a clear ConnectionLost for
# both the provider (serve() raises) and the requester. The checks are sdk/python/tests/mesh_check.py.
. "$(dirname "$0")/lib_e2e.sh"
. "$(dirname "$0")/agents_e2e_lib.sh"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
# Debian's python3 (with its pip and setuptools); another python3 on PATH may lack them
PYBIN="${GM_PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}"
CHECK="$SRC/sdk/python/tests/mesh_check.py"

step "pip installs the SDK offline (no index, no build isolation)"
cp -r "$SRC/sdk/python" "$E2E_TMP/sdk-src"
"$PYBIN" -m pip --version >/dev/null 2>&1 || fail "$PYBIN has no pip (scripts/deps.sh installs python3-pip)"
"$PYBIN" -m pip install --quiet --no-index --no-build-isolation --target "$E2E_TMP/site" "$E2E_TMP/sdk-src" \
    >"$E2E_TMP/pip.log" 2>&1 || fail "pip install ./sdk/python: $(tail -5 "$E2E_TMP/pip.log")"
[ -f "$E2E_TMP/site/genesis_mesh/aio.py" ] || fail "the installed package has no genesis_mesh/aio.py"
export PYTHONPATH="$E2E_TMP/site"
sdk() { "$PYBIN" "$CHECK" "$@"; }
"$PYBIN" -c 'import genesis_mesh, sys; sys.exit(0 if genesis_mesh.__file__.startswith(sys.argv[1]) else 1)' "$E2E_TMP/site" ||
    fail "genesis_mesh is not imported from the installed copy"

step "network: NA, a hub, a requester and two provider nodes"
e2e_na_start
for n in hub req pa pb; do e2e_node_join "$n" role:service:agent; done
e2e_node_start hub
for n in req pa pb; do e2e_node_start "$n" --peer "$(node_addr hub)"; done
wait_full_mesh req pa pb

step "a sync provider on pa and an asyncio provider on pb"
sdk provide "$(node_dir pa)" "$E2E_TMP/ready-sync" >"$E2E_TMP/prov-sync.out" 2>&1 &
PROV_SYNC=$!; E2E_PIDS+=("$PROV_SYNC")
sdk provide-aio "$(node_dir pb)" "$E2E_TMP/ready-aio" >"$E2E_TMP/prov-aio.out" 2>&1 &
E2E_PIDS+=("$!")
wait_until "$E2E_TIMEOUT" "the sync provider provided sdk.test" test -s "$E2E_TMP/ready-sync"
wait_until "$E2E_TIMEOUT" "the asyncio provider provided sdk.async" test -s "$E2E_TMP/ready-aio"
gm agents --dir "$(node_dir req)" --capability sdk.test --json >"$E2E_TMP/agents.json" 2>>"$ASK_ALL"
json_ok 'd[0]["descriptor"]["agent_id"] == "py-sdk-test" and d[0]["check"] == "verified" and d[0]["descriptor"]["metadata"]["description"] == "the Python SDK'"'"'s test provider" and d[0]["descriptor"]["metadata"]["input_schema"]["properties"]["mode"] == {"type": "string"}' \
    <"$E2E_TMP/agents.json" || fail "descriptor: $(cat "$E2E_TMP/agents.json")"

step "ask, error answers, deadlines, sizes, asyncio (sdk/python/tests/mesh_check.py)"
sdk check "$(node_dir req)" "$(node_key pa)" >"$E2E_TMP/check.out" 2>&1 || fail "mesh_check: $(cat "$E2E_TMP/check.out")"
cat "$E2E_TMP/check.out" >&2
[ "$(grep -c '^PASS' "$E2E_TMP/check.out")" -eq 6 ] || fail "not every check passed: $(cat "$E2E_TMP/check.out")"
grep -q "RuntimeError: the handler broke on purpose" "$E2E_TMP/prov-sync.out" || fail "the provider did not log the handler's traceback"
kill -0 "$PROV_SYNC" || fail "the sync provider died"

step "the CLI requester (genesis-mesh ask) verifies the SDK provider's answer"
ask_ok "genesis-mesh ask sdk.test" "provider: py-sdk-test" sdk.test --input-json '{"mode":"ok"}' --dir "$(node_dir req)"
grep -q "every signature verified" "$ASK_OUT" || fail "not verified: $(cat "$ASK_OUT")"

step "the node going away: the provider's serve() raises ConnectionLost"
e2e_node_stop pa
rc=0; wait "$PROV_SYNC" || rc=$?
[ "$rc" -eq 3 ] && grep -q "ConnectionLost: unavailable: the node closed the connection" "$E2E_TMP/prov-sync.out" ||
    fail "provider on a stopped node: exit $rc: $(cat "$E2E_TMP/prov-sync.out")"

step "the node going away: a requester's ask raises ConnectionLost"
sdk lost "$(node_dir req)" "$E2E_TMP/lost-ready" "$E2E_TMP/lost-go" >"$E2E_TMP/lost.out" 2>&1 &
LOST=$!; E2E_PIDS+=("$LOST")
wait_until "$E2E_TIMEOUT" "the requester connected" test -s "$E2E_TMP/lost-ready"
e2e_node_stop req
touch "$E2E_TMP/lost-go"
rc=0; wait "$LOST" || rc=$?
[ "$rc" -eq 0 ] && [ "$(grep -c '^PASS' "$E2E_TMP/lost.out")" -eq 2 ] || fail "requester on a stopped node: $rc $(cat "$E2E_TMP/lost.out")"
cat "$E2E_TMP/lost.out" >&2

e2e_finish
