#!/usr/bin/env bash
# The four seed agents as real `node start` processes on loopback, in a star: finance, crm
# and support each dial only the supervisor. Proves: peers are authenticated and listed,
# the supervisor reaches every agent and back, finance reaches crm only through the
# supervisor (route next hop = supervisor's key, metric 2) and the message arrives intact,
# the relay does not see the payload, and a node stops cleanly (exit 0) on SIGTERM.
. "$(dirname "$0")/lib_e2e.sh"

AGENTS=(supervisor finance crm support)

step "network: NA, four agents joined"
e2e_na_start
for a in "${AGENTS[@]}"; do e2e_node_join "$a" "role:$a"; done
declare -A KEY
for a in "${AGENTS[@]}"; do KEY[$a]="$(node_key "$a")"; done

step "status --json of a stopped node follows docs/node-cli.md"
for a in "${AGENTS[@]}"; do
    check "status --json of stopped $a has node_public_key, roles, running=false (docs/node-cli.md)" \
        eval 'node_status_cli "$a" | json_ok "d.get(\"node_public_key\") == a[0] and d.get(\"running\") is False and a[1] in d.get(\"roles\", [])" "${KEY[$a]}" "role:$a"'
done

step "start the star: leaves dial only the supervisor"
e2e_node_start supervisor
SUP_ADDR="$(node_addr supervisor)"
for a in finance crm support; do e2e_node_start "$a" --peer "$SUP_ADDR"; done

step "peers: supervisor sees the three leaves, each leaf sees only the supervisor"
for a in finance crm support; do
    wait_until "$E2E_TIMEOUT" "supervisor lists $a as a peer" has_peer supervisor "${KEY[$a]}"
    wait_until "$E2E_TIMEOUT" "$a lists supervisor as a peer" has_peer "$a" "${KEY[supervisor]}"
done
node_ok supervisor '
ps = {p["node_public_key"]: p for p in d["peers"]}
len(ps) == 3 and all(ps[k]["direction"] == "inbound" for k in a)' \
    "${KEY[finance]}" "${KEY[crm]}" "${KEY[support]}" ||
    fail "supervisor peers: $(node_q supervisor 'd["peers"]')"
for a in finance crm support; do
    node_ok "$a" '
len(d["peers"]) == 1 and d["peers"][0]["node_public_key"] == a[0]
and d["peers"][0]["direction"] == "outbound" and "role:supervisor" in d["peers"][0]["roles"]
and d["peers"][0]["cert_id"] == a[1]' "${KEY[supervisor]}" "$(node_cert_id supervisor)" ||
        fail "$a peers: $(node_q "$a" 'd["peers"]')"
done

step "routes: supervisor -> each leaf direct (metric 1); leaf -> leaf via supervisor (metric 2)"
for a in finance crm support; do
    wait_until "$E2E_TIMEOUT" "supervisor has a direct route to $a" \
        has_route supervisor "${KEY[$a]}" "${KEY[$a]}" 1
    wait_until "$E2E_TIMEOUT" "$a has a direct route to supervisor" \
        has_route "$a" "${KEY[supervisor]}" "${KEY[supervisor]}" 1
done
for a in finance crm support; do
    for b in finance crm support; do
        [ "$a" = "$b" ] && continue
        wait_until "$E2E_TIMEOUT" "$a routes to $b via supervisor, metric 2" \
            has_route "$a" "${KEY[$b]}" "${KEY[supervisor]}" 2
    done
done
node_ok finance '
r = [r for r in d["routes"] if r["destination"] == a[0]]
len(r) >= 1 and all(x["next_hop"] == a[1] for x in r) and any(x["hops"] == 2 for x in r)' \
    "${KEY[crm]}" "${KEY[supervisor]}" || fail "finance routes to crm: $(node_q finance 'd["routes"]')"
node_ok finance 'all(p["node_public_key"] != a[0] for p in d["peers"])' "${KEY[crm]}" ||
    fail "finance has a direct link to crm, the relay path is not what is tested"

step "supervisor <-> each agent round trips"
for a in finance crm support; do
    e2e_message supervisor "$a" "rt-$a" "hello $a from supervisor"
    e2e_message "$a" supervisor "rt-$a-back" "reply from $a to supervisor"
done

step "finance -> crm through the supervisor, the relay cannot read it"
fwd_before="$(node_metric supervisor '^data_forwarded')"
# The supervisor listens on every port: a relayed message must not be delivered to it.
sup_all="$E2E_TMP/supervisor-all.json"
e2e_recv_start supervisor '*' 1 "$sup_all"
SECRET="ledger-q3-$RANDOM$RANDOM-confidential"
e2e_message finance crm finance-crm "$SECRET"
e2e_message crm finance crm-finance "ack $SECRET"
[ "$(node_metric supervisor '^data_forwarded')" -gt "$fwd_before" ] ||
    fail "supervisor's data_forwarded did not increase: the message did not go through the relay"
! json_lines_has "$sup_all" "${KEY[finance]}" "$SECRET" || fail "the relay delivered finance's message to its own subscriber"
! grep -rqF "$SECRET" "$(node_dir supervisor)" || fail "the plaintext appears in the supervisor's files/logs"

step "send to an unknown key fails with no route"
rc=0
STRANGER="$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
gm send --dir "$(node_dir finance)" --to "$STRANGER" --port test "x" >"$E2E_TMP/noroute.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -qi "no route" "$E2E_TMP/noroute.out" ||
    fail "send to an unknown key: exit $rc, $(cat "$E2E_TMP/noroute.out")"

step "status --json of a running node follows docs/node-cli.md"
check "status --json of running supervisor has the contract members (peers, routes, metrics, running=true)" \
    eval 'status_cli_matches_contract supervisor && node_status_cli supervisor | json_ok "d[\"running\"] is True and len(d[\"peers\"]) == 3"'
check "status (text) of running supervisor shows peers and routes" \
    eval '"$GM_BIN" status --dir "$(node_dir supervisor)" | grep -qi peer && "$GM_BIN" status --dir "$(node_dir supervisor)" | grep -qi route'
node_api supervisor '{"op":"metrics"}' | json_ok 'd["ok"] and "gm_node_" in d["text"]' || fail "metrics op has no Prometheus text"

step "metrics and Prometheus text are exposed"
node_ok supervisor 'isinstance(d["metrics"], dict) and len(d["metrics"]) > 0' || fail "no metrics in status"
wait_until "$E2E_TIMEOUT" "supervisor holds a CRL" node_crl_seq_at_least supervisor 0
node_ok supervisor 'isinstance(d["crl_sequence"], int) and isinstance(d["expires_at"], str) and d["network"] == a[0]' \
    "$E2E_NETWORK" || fail "status misses crl_sequence/expires_at/network: $(node_status supervisor)"

step "CLI contract: recv timeout, send from stdin, text output, bad port, one node per directory"
rc=0
gm recv --dir "$(node_dir finance)" --port nobody-sends-here --timeout-ms 300 >"$E2E_TMP/recv-timeout.out" 2>&1 || rc=$?
check "recv with nothing received exits 1 after --timeout-ms (got $rc)" test "$rc" -eq 1
txt="$E2E_TMP/recv-text.out"
"$GM_BIN" recv --dir "$(node_dir crm)" --port stdin-port --count 1 --timeout-ms 60000 >"$txt" 2>&1 &
E2E_PIDS+=("$!")
deadline=$(( $(date +%s) + E2E_TIMEOUT ))
until grep -q "stdin text" "$txt" || [ "$(date +%s)" -ge "$deadline" ]; do
    printf 'stdin text' | gm send --dir "$(node_dir finance)" --to "${KEY[crm]}" --port stdin-port - >/dev/null 2>&1 ||
        fail "send - (stdin) failed"
    for _ in $(seq 1 10); do grep -q "stdin text" "$txt" && break; sleep 0.1; done
done
check "recv text output is 'from <key> [port]: <text>' (got: $(head -1 "$txt"))" \
    grep -qxF "from ${KEY[finance]} [stdin-port]: stdin text" "$txt"
rc=0
gm send --dir "$(node_dir finance)" --to "${KEY[crm]}" --port 'Bad Port!' x >/dev/null 2>&1 || rc=$?
check "send with an invalid port name is refused" test "$rc" -ne 0
check "a second node start in a running node's directory is refused (exit 1, 'already running')" \
    e2e_node_start_expect_fail finance "a node is already running in"
node_running finance || fail "the refused second start disturbed the running finance node"
mkdir -m 700 "$(node_dir empty)"
check "node start in a directory without key/certificate exits 1 and says the directory is incomplete" \
    e2e_node_start_expect_fail empty "state directory .* is incomplete"

step "support stops cleanly: CLOSE sent, supervisor drops the peer and every route to it"
e2e_node_stop support || fail "node support exited with status $? on SIGTERM (want 0); $(tail -20 "$(node_dir support)/node.out")"
wait_until "$E2E_TIMEOUT" "supervisor dropped support" no_peer supervisor "${KEY[support]}"
wait_until "$E2E_TIMEOUT" "supervisor has no route to support" no_route supervisor "${KEY[support]}"
wait_until "$E2E_TIMEOUT" "finance has no route to support" no_route finance "${KEY[support]}"
wait_until "$E2E_TIMEOUT" "send finance -> support reports no route" e2e_send_expect_no_route finance support
node_running support && fail "stopped support still answers on its socket"
check "status --json of stopped support says running=false" eval 'node_status_cli support | json_ok "d.get(\"running\") is False"'


step "support restarts and is reachable again"
e2e_node_start support --peer "$SUP_ADDR"
wait_until "$E2E_TIMEOUT" "finance routes to support again" has_route finance "${KEY[support]}" "${KEY[supervisor]}" 2
e2e_message finance support again "back again"

e2e_finish
