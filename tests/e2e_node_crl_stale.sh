#!/usr/bin/env bash
# CRL freshness with real processes: the NA re-signs its CRL on a schedule without any
# revocation (sequence goes up, next_update two intervals ahead); a node cut off from the NA
# (and from any peer with a fresher CRL) reports its CRL stale once next_update passes (log
# event, crl_stale metric and status field, warning in `status`); started with
# --crl-stale refuse it keeps its existing links but refuses a new peer until a fresh CRL
# arrives, then accepts it.
. "$(dirname "$0")/lib_e2e.sh"

step "network: NA re-signing its CRL every 2 s, next_update 2 intervals ahead"
e2e_na_start
for n in alpha beta gamma; do e2e_node_join "$n" "role:$n"; done
NA_PORT="${E2E_NA_URL##*:}"
e2e_na_stop
python3 - "$E2E_NET/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["crl_resign_interval_s"] = 2
c["crl_next_update_multiple"] = 2
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
# The NA again, on the port the nodes know (their node.json names it).
na_restart() {
    rm -f "$E2E_NET.port"
    "$GM_BIN" na start --dir "$E2E_NET" --listen "127.0.0.1:$NA_PORT" --port-file "$E2E_NET.port" \
        >>"$E2E_NET/na.log" 2>&1 &
    E2E_NA_PID=$!
    E2E_PIDS+=("$E2E_NA_PID")
    wait_until "$E2E_TIMEOUT" "the NA answers /crl" e2e_na_crl_sequence
}
na_restart
first="$(e2e_na_crl_sequence)"
na_seq_above() { [ "$(e2e_na_crl_sequence)" -gt "$1" ]; }
wait_until "$E2E_TIMEOUT" "the NA re-signs its CRL without a revocation" na_seq_above "$first"
grep -q "CRL re-signed on schedule" "$E2E_NET/na.log" || fail "the NA log does not mention the scheduled re-signing"

step "alpha (--crl-stale refuse) and beta (warn) linked, CRL fresh"
e2e_node_start alpha --crl-stale refuse --crl-poll-ms 500
e2e_node_start beta --peer "$(node_addr alpha)" --crl-poll-ms 500
wait_until "$E2E_TIMEOUT" "alpha routes to beta" has_route alpha "$(node_key beta)"
node_ok alpha 'd["crl_stale"] is False and isinstance(d["crl_next_update"], str)' ||
    fail "alpha: $(node_q alpha '[d.get("crl_stale"), d.get("crl_next_update")]')"
[ "$(node_metric alpha '^crl_stale$')" = 0 ] || fail "crl_stale metric is not 0 on a fresh CRL"

step "the NA goes away: alpha's CRL passes next_update and is reported stale"
e2e_na_stop
crl_stale() { node_ok "$1" 'd["crl_stale"] is True'; }
wait_until "$E2E_TIMEOUT" "alpha reports its CRL stale" crl_stale alpha
[ "$(node_metric alpha '^crl_stale$')" = 1 ] || fail "crl_stale metric is not 1 on a stale CRL"
grep -q '"event":"crl_stale"' "$(node_dir alpha)/node.log" || fail "no crl_stale warning in alpha's log"
"$GM_BIN" status --dir "$(node_dir alpha)" 2>/dev/null | grep -q "CRL is stale" ||
    fail "status does not warn about the stale CRL"
check "the existing link stays" has_peer alpha "$(node_key beta)"

step "refuse mode: a new peer is refused while the CRL is stale"
e2e_node_start gamma --peer "$(node_addr alpha)" --crl-poll-ms 500
wait_until "$E2E_TIMEOUT" "alpha refuses gamma's link" metric_above alpha '^crl_stale_refused$' 0
check "alpha has no route to gamma" no_route alpha "$(node_key gamma)"
grep -q '"event":"link_refused_crl_stale"' "$(node_dir alpha)/node.log" || fail "no link_refused_crl_stale in alpha's log"

step "the NA is back: a fresh CRL, and gamma is accepted"
na_restart
fresh() { node_ok "$1" 'd["crl_stale"] is False'; }
wait_until "$E2E_TIMEOUT" "alpha's CRL is fresh again" fresh alpha
grep -q '"event":"crl_fresh"' "$(node_dir alpha)/node.log" || fail "no crl_fresh event in alpha's log"
wait_until 90 "alpha routes to gamma" has_route alpha "$(node_key gamma)" "$(node_key gamma)" 1
e2e_finish
