#!/usr/bin/env bash
# Certificate renewal by the running node: alpha, linked to beta, renews its certificate
# (POST /renew, node-signed) while it runs. Proves: a new certificate with the same roles is
# written to alpha's cert.json and verifies under the genesis, the NA lists it as active, beta
# receives and accepts the renewed certificate, and traffic keeps flowing both ways afterwards.
# The NA retires the renewed certificate as superseded after a 3 s overlap (issue 7 item 1):
# the CRL then lists it, and beta keeps its link to alpha (now on the new certificate).
. "$(dirname "$0")/lib_e2e.sh"

step "network: NA (3 s renewal overlap), alpha and beta joined"
E2E_NA_CONFIG='{"supersede_grace_s": 3}' e2e_na_start
e2e_node_join alpha role:finance
e2e_node_join beta role:supervisor
OLD_ID="$(node_cert_id alpha)"
OLD_ROLES="$(json_q 'd["roles"]' <"$(node_dir alpha)/cert.json")"

step "beta, then alpha (renewing 2 s after start) linked to beta"
e2e_node_start beta
e2e_node_start alpha --peer "$(node_addr beta)" --renew-after-s 2
wait_until "$E2E_TIMEOUT" "beta lists alpha as a peer" has_peer beta "$(node_key alpha)"
e2e_message alpha beta app "before renewal"

step "alpha renews its certificate while running"
cert_changed() { [ "$(node_cert_id alpha)" != "$OLD_ID" ]; }
wait_until "$E2E_TIMEOUT" "alpha's cert.json holds a new certificate" cert_changed
NEW_ID="$(node_cert_id alpha)"
log "renewed: $OLD_ID -> $NEW_ID"
[ "$(json_q 'd["roles"]' <"$(node_dir alpha)/cert.json")" = "$OLD_ROLES" ] ||
    fail "renewal changed the roles: $(cat "$(node_dir alpha)/cert.json")"
gm cert verify "$(node_dir alpha)/cert.json" --genesis "$(node_dir alpha)/genesis.json" >"$E2E_TMP/verify.out" 2>&1 ||
    fail "the renewed certificate does not verify: $(cat "$E2E_TMP/verify.out")"
e2e_admin nodes --json >"$E2E_TMP/nodes.json" || fail "admin nodes failed"
# active, or already superseded by alpha's next renewal (--renew-after-s renews again once the
# 3 s overlap is over)
json_ok 'any(n["cert_id"] == a[0] and (n["status"] == "active" or n["reason"] == "superseded") for n in d["nodes"])' \
    "$NEW_ID" <"$E2E_TMP/nodes.json" ||
    fail "the NA does not list $NEW_ID as active (or superseded by a later renewal): $(cat "$E2E_TMP/nodes.json")"
grep -q '"cert_renewed"' "$(node_dir alpha)/node.log" || fail "alpha logged no cert_renewed event"

step "beta accepts the renewed certificate; traffic flows both ways"
beta_has_new_cert() { grep -q "\"peer_cert_renewed\".*$NEW_ID\|$NEW_ID.*\"peer_cert_renewed\"" "$(node_dir beta)/node.log"; }
wait_until "$E2E_TIMEOUT" "beta logged alpha's renewed certificate" beta_has_new_cert
has_peer beta "$(node_key alpha)" || fail "beta lost alpha as a peer after the renewal"
e2e_message alpha beta app "after renewal"
e2e_message beta alpha app "reply after renewal"

step "after the overlap the CRL lists the old certificate as superseded; the link and traffic stay"
old_listed() { e2e_na_crl_revokes "$OLD_ID" superseded; }
wait_until "$E2E_TIMEOUT" "the NA's CRL lists $OLD_ID as superseded" old_listed
crl_seq="$(e2e_na_crl_sequence)"
wait_until "$E2E_TIMEOUT" "beta holds CRL $crl_seq" node_crl_seq_at_least beta "$crl_seq"
wait_until "$E2E_TIMEOUT" "alpha holds CRL $crl_seq" node_crl_seq_at_least alpha "$crl_seq"
has_peer beta "$(node_key alpha)" || fail "beta dropped alpha when the CRL listed alpha's previous certificate"
grep -q '"peer_revoked"' "$(node_dir beta)/node.log" && fail "beta closed a link as revoked: $(grep peer_revoked "$(node_dir beta)/node.log")"
e2e_message alpha beta app "after the overlap"
e2e_message beta alpha app "reply after the overlap"

step "alpha stops cleanly"
e2e_node_stop alpha || fail "alpha did not exit 0 on SIGTERM"
e2e_finish
