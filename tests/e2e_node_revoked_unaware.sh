#!/usr/bin/env bash
# A revoked node that does not know it is revoked: the others withdraw it while it runs.
# crm never asks the NA (--crl-poll-ms -1 --crl-watch-s -1) and so never learns of its revocation (its peers
# close its links before it can fetch their CRL); it keeps running and keeps redialling.
# Topology: supervisor and relay both linked to crm and to each other; observer linked to
# relay only, so observer's route to crm is learnt through relay, a node that is not revoked.
#   1. before: observer routes to crm via relay (metric 2) and a message gets through.
#   2. operator revokes crm; supervisor polls the NA, relay and observer learn by gossip.
#   3. on each of them, in the very status snapshot where the new CRL first shows, crm is
#      neither a peer nor a destination; observer logged route_withdrawn (reason revoked)
#      for the route it had through relay; crm is still up and still holds the old CRL.
#   4. for three route refresh periods, and until each of supervisor and relay refused crm's
#      redials at least three times since the revocation, no route or link to crm
#      re-appears anywhere, and crm ends up with no peer and no route.
. "$(dirname "$0")/lib_e2e.sh"

ROUTE_REFRESH_S=5   # NODE_ROUTE_REFRESH_MS in lib/node/node_routing.c: one full update per period

step "network: supervisor, relay, crm (never polls the NA), observer behind relay"
e2e_na_start
for a in supervisor relay crm observer; do e2e_node_join "$a" "role:$a"; done
declare -A KEY
for a in supervisor relay crm observer; do KEY[$a]="$(node_key "$a")"; done
e2e_node_start supervisor
e2e_node_start relay --peer "$(node_addr supervisor)"
e2e_node_start crm --peer "$(node_addr supervisor)" --peer "$(node_addr relay)" --crl-poll-ms -1 --crl-watch-s -1
e2e_node_start observer --peer "$(node_addr relay)" --crl-poll-ms 3600000 --crl-watch-s -1
for a in supervisor relay; do
    wait_until "$E2E_TIMEOUT" "$a has a link to crm" has_peer "$a" "${KEY[crm]}"
done
wait_until "$E2E_TIMEOUT" "observer routes to crm via relay" has_route observer "${KEY[crm]}" "${KEY[relay]}" 2
e2e_message observer crm before "observer reaches crm through relay"
S0="$(e2e_na_crl_sequence)"
CRM_CERT="$(node_cert_id crm)"
declare -A REF0   # handshakes refused as revoked before the revocation (none expected)
for a in supervisor relay; do REF0[$a]="$(node_metric "$a" '^handshake_refused_revoked$')"; done

step "operator revokes crm (key_compromise)"
e2e_admin revoke --cert-id "$CRM_CERT" --reason key_compromise >"$E2E_TMP/revoke.out" 2>&1 ||
    fail "admin revoke failed: $(cat "$E2E_TMP/revoke.out")"
S1="$(e2e_na_crl_sequence)"
[ "$S1" -gt "$S0" ] || fail "CRL sequence did not increase: $S0 -> $S1"

# first_snapshot NAME: waits for the first status of NAME that shows CRL >= S1 and writes it
# to $E2E_TMP/first-NAME.json (the same snapshot holds peers and routes: one API answer).
_snapshot_has_crl() {
    local s; s="$(node_status "$1")"
    printf '%s' "$s" | json_ok '(d.get("crl_sequence") or 0) >= int(a[0])' "$S1" || return 1
    printf '%s' "$s" >"$E2E_TMP/first-$1.json"
}
crm_clean_in() {
    json_ok 'all(p["node_public_key"] != a[0] for p in d.get("peers", []))
and all(r["destination"] != a[0] or r["metric"] >= 65535 for r in d.get("routes", []))' "${KEY[crm]}" <"$1"
}

step "each node drops crm in the same snapshot where it shows the new CRL"
for a in supervisor relay observer; do
    wait_until "$E2E_TIMEOUT" "$a holds CRL sequence >= $S1" _snapshot_has_crl "$a"
    crm_clean_in "$E2E_TMP/first-$a.json" ||
        fail "$a shows CRL $S1 but still has a link or route to crm: $(cat "$E2E_TMP/first-$a.json")"
done
# observer had no link to crm: only the CRL can have withdrawn its route through relay.
grep '"event":"route_withdrawn"' "$(node_dir observer)/node.log" | grep "${KEY[crm]}" | grep -q '"reason":"revoked"' ||
    fail "observer did not withdraw its route to crm (through relay) on the CRL"
for a in supervisor relay; do
    grep '"event":"peer_revoked"' "$(node_dir "$a")/node.log" | grep -q "$CRM_CERT" ||
        fail "$a did not close its link to crm as revoked"
done
node_alive crm || fail "crm stopped: it was meant to run on, unaware"
node_ok crm 'd["running"] is True and d.get("revoked") is not True and (d.get("crl_sequence") or 0) < int(a[0])' "$S1" ||
    fail "crm learnt of its revocation (it must not for this test): $(node_status crm)"

step "no link or route to crm re-appears over $((3 * ROUTE_REFRESH_S)) s and three refused redials"
never_back() {
    local a
    for a in supervisor relay observer; do
        no_peer "$a" "${KEY[crm]}" || fail "$a has a link to revoked crm again: $(node_status "$a")"
        no_route "$a" "${KEY[crm]}" || fail "$a routes to revoked crm again: $(node_status "$a")"
    done
    node_alive crm || fail "crm stopped while it was meant to run on"
}
end=$(( $(date +%s) + 3 * ROUTE_REFRESH_S ))
# failure bound: crm redials after 0.5 s, doubling up to 30 s (NODE_REDIAL_*_MS)
limit=$(( $(date +%s) + 3 * ROUTE_REFRESH_S + 3 * E2E_TIMEOUT ))
while :; do
    never_back
    done_redials=1
    for a in supervisor relay; do
        metric_above "$a" '^handshake_refused_revoked$' "$(( REF0[$a] + 2 ))" || done_redials=0
    done
    [ "$(date +%s)" -ge "$end" ] && [ "$done_redials" = 1 ] && break
    [ "$(date +%s)" -ge "$limit" ] && fail "crm's redials were not refused three times by supervisor and relay"
    sleep 0.5
done
wait_until "$E2E_TIMEOUT" "crm has no peer left" peer_count_is crm 0
for a in supervisor relay observer; do
    wait_until "$E2E_TIMEOUT" "crm has no route to $a" no_route crm "${KEY[$a]}"
done
grep -q '"event":"handshake_rejected".*"reason":"revoked"' "$(node_dir crm)/node.log" ||
    fail "crm was never told why its redials were refused"
node_ok crm '(d.get("crl_sequence") or 0) < int(a[0])' "$S1" || fail "crm learnt the CRL after all"
# The rest of the mesh is unaffected.
e2e_message observer supervisor after "observer still reaches supervisor"
rc=0; e2e_node_stop crm || rc=$?
[ "$rc" -eq 0 ] || fail "crm exited with status $rc on SIGTERM (want 0)"

e2e_finish
