#!/usr/bin/env bash
# The revocation drill, step by step, on the four agents (star around the supervisor, as in
# e2e_node_mesh.sh). support polls the NA only once an hour and holds no CRL watch, so it can learn the new CRL
# only from its peers (gossip).
#   1. `admin revoke` of crm (key_compromise): the NA serves a CRL with a higher sequence.
#   2. every node reaches that sequence with no operator action (support through gossip).
#   4. sessions with crm are closed and every node withdraws its routes to crm.
#   3. crm learns it is revoked, closes its links and exits with status 1 by itself; restarted
#      with the same key (even with its old, pre-revocation crl.json: it fetches the NA's CRL
#      first) it refuses to start. A copy that does not know it is revoked (NA unreachable:
#      it warns and starts on its cached CRL) is refused by its peers (handshake_refused
#      rises), is told why (CLOSE revoked) and never counts the link as up.
#   5. rejoin: after key_compromise a new invite alone is refused; clear-key + a new invite
#      works and crm is reachable again. After a revocation for another reason (finance,
#      superseded) a new invite alone is enough.
. "$(dirname "$0")/lib_e2e.sh"

AGENTS=(supervisor finance crm support)
GOSSIP_ONLY=support

step "network: NA, four agents, star around the supervisor"
e2e_na_start
for a in "${AGENTS[@]}"; do e2e_node_join "$a" "role:$a"; done
declare -A KEY
for a in "${AGENTS[@]}"; do KEY[$a]="$(node_key "$a")"; done
e2e_node_start supervisor
SUP_ADDR="$(node_addr supervisor)"
e2e_node_start finance --peer "$SUP_ADDR"
e2e_node_start crm --peer "$SUP_ADDR"
e2e_node_start "$GOSSIP_ONLY" --peer "$SUP_ADDR" --crl-poll-ms 3600000 --crl-watch-s -1
for a in finance support; do
    wait_until "$E2E_TIMEOUT" "$a routes to crm via supervisor" has_route "$a" "${KEY[crm]}" "${KEY[supervisor]}" 2
done
wait_until "$E2E_TIMEOUT" "supervisor routes to crm" has_route supervisor "${KEY[crm]}" "${KEY[crm]}" 1
e2e_message finance crm before "before the revocation"

S0="$(e2e_na_crl_sequence)"
for a in "${AGENTS[@]}"; do
    wait_until "$E2E_TIMEOUT" "$a holds the NA's current CRL ($S0)" node_crl_seq_at_least "$a" "$S0"
done
CRM_CERT="$(node_cert_id crm)"
# crm's CRL from before the revocation, to restart it with later.
cp "$(node_dir crm)/crl.json" "$E2E_TMP/crm-crl-before.json" || fail "crm did not store the CRL in crl.json"

step "1. operator revokes crm's certificate (key_compromise): the NA publishes a higher CRL"
e2e_admin revoke --cert-id "$CRM_CERT" --reason key_compromise >"$E2E_TMP/revoke.out" 2>&1 ||
    fail "admin revoke failed: $(cat "$E2E_TMP/revoke.out")"
S1="$(e2e_na_crl_sequence)"
[ "$S1" -gt "$S0" ] || fail "CRL sequence did not increase: $S0 -> $S1"
e2e_na_crl_revokes "$CRM_CERT" key_compromise || fail "the NA's CRL does not list crm: $(e2e_na_crl_q d)"

step "2. every node reaches CRL sequence $S1 by itself ($GOSSIP_ONLY only through gossip)"
for a in supervisor finance "$GOSSIP_ONLY"; do
    wait_until "$E2E_TIMEOUT" "$a holds CRL sequence >= $S1" node_crl_seq_at_least "$a" "$S1"
done
node_ok "$GOSSIP_ONLY" 'd["crl_sequence"] >= int(a[0])' "$S1" || fail "gossip"
# The crl op of the local API returns the CRL document itself.
python3 - "$(node_dir "$GOSSIP_ONLY")/node.sock" "$CRM_CERT" <<'EOF' || fail "crl op of $GOSSIP_ONLY does not list crm"
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'{"op":"crl"}\n')
buf = b""
while not buf.endswith(b"\n"):
    c = s.recv(65536)
    if not c: break
    buf += c
r = json.loads(buf)
assert r["ok"] and any(x["certificate_id"] == sys.argv[2] for x in r["crl"]["revoked_certificates"]), r
EOF
[ -s "$(node_dir "$GOSSIP_ONLY")/crl.json" ] && json_ok 'd["sequence"] >= int(a[0])' "$S1" <"$(node_dir "$GOSSIP_ONLY")/crl.json" ||
    fail "$GOSSIP_ONLY did not store the CRL in crl.json"

step "4. sessions with crm closed, routes to crm withdrawn on every node"
for a in supervisor finance "$GOSSIP_ONLY"; do
    wait_until "$E2E_TIMEOUT" "$a has no session with crm" no_peer "$a" "${KEY[crm]}"
    wait_until "$E2E_TIMEOUT" "$a has no route to crm" no_route "$a" "${KEY[crm]}"
done
wait_until "$E2E_TIMEOUT" "finance: send to crm says no route" e2e_send_expect_no_route finance crm
# The rest of the mesh is unaffected.
e2e_message finance "$GOSSIP_ONLY" after "finance still reaches $GOSSIP_ONLY"

step "3. crm stops by itself with status 1 and does not get back in"
# crm polls the NA itself (and is refused by its peers): it learns it is revoked and stops.
wait_until "$E2E_TIMEOUT" "crm stopped by itself" node_exited crm
rc=0; e2e_node_stop crm || rc=$?
[ "$rc" -eq 1 ] || fail "crm exited with status $rc after its revocation (want 1): $(tail -3 "$(node_dir crm)/node.out")"
grep -q "is revoked (key_compromise, CRL sequence $S1" "$(node_dir crm)/node.out" ||
    fail "crm's exit message does not say why: $(tail -3 "$(node_dir crm)/node.out")"
grep '"event":"self_revoked"' "$(node_dir crm)/node.log" | grep -q '"level":"error"' ||
    fail "crm did not log self_revoked at error level"
# Its cached CRL predates the revocation: only the CRL fetched at start can make it refuse.
cp "$E2E_TMP/crm-crl-before.json" "$(node_dir crm)/crl.json"
if e2e_node_start_expect_fail crm "certificate $CRM_CERT is revoked \\(key_compromise"; then
    log "crm refuses to start: $(tail -1 "$(node_dir crm)/refused.out")"
else
    fail "crm did not refuse to start as revoked (NA reachable): $(cat "$(node_dir crm)/refused.why"): $(tail -5 "$(node_dir crm)/refused.out")"
fi
# A copy of crm that never heard of the revocation (no crl.json, NA unreachable) dials the
# supervisor with the same key and certificate: the supervisor must refuse the handshake.
STALE="crm-stale"
mkdir -m 700 "$(node_dir $STALE)"
for f in node.key node.pub cert.json genesis.json node.json; do
    [ -f "$(node_dir crm)/$f" ] && cp -p "$(node_dir crm)/$f" "$(node_dir $STALE)/$f"
done
REFUSED0="$(node_metric supervisor '^handshake_refused_revoked$')"
e2e_node_start "$STALE" --peer "$SUP_ADDR" --na http://127.0.0.1:9 --crl-poll-ms 3600000 --crl-watch-s -1
grep -q '"event":"crl_fetch_failed"' "$(node_dir $STALE)/node.log" || fail "stale crm did not warn that the NA is unreachable"
wait_until "$E2E_TIMEOUT" "supervisor refused the stale crm's handshake (handshake_refused_revoked > $REFUSED0)" \
    metric_above supervisor '^handshake_refused_revoked$' "$REFUSED0"
# The initiator learns why, and a link the responder refused never counted as up.
wait_until "$E2E_TIMEOUT" "stale crm logged that the supervisor refused it as revoked" \
    grep -q '"event":"handshake_rejected".*"reason":"revoked"' "$(node_dir $STALE)/node.log"
metric_above "$STALE" '^handshakes_rejected$' 0 || fail "stale crm did not count the rejection"
! grep -q '"event":"peer_up"' "$(node_dir $STALE)/node.log" || fail "stale crm logged peer_up for a refused link"
no_peer supervisor "${KEY[crm]}" || fail "supervisor accepted a session with revoked crm"
no_route supervisor "${KEY[crm]}" || fail "supervisor routes to revoked crm again"
no_route finance "${KEY[crm]}" || fail "finance routes to revoked crm again"
# The stale copy never learns a route: its handshakes end before anything is exchanged.
no_route "$STALE" "${KEY[finance]}" || fail "stale crm learnt a route to finance"
wait_until "$E2E_TIMEOUT" "stale crm lists no peer" no_peer "$STALE" "${KEY[supervisor]}"
e2e_node_stop "$STALE" || true

step "5a. key_compromise: a new invite alone does not let crm rejoin with the same key"
rc=0
token="$(e2e_invite role:crm)"
gm join --na "$E2E_NA_URL" --token "$token" --dir "$(node_dir crm)" >"$E2E_TMP/rejoin1.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "crm rejoined with a compromised key and no clear-key"
grep -qiE "compromis|revok|clear" "$E2E_TMP/rejoin1.out" || fail "join refusal does not say why: $(cat "$E2E_TMP/rejoin1.out")"
[ "$(node_cert_id crm)" = "$CRM_CERT" ] || fail "refused join replaced crm's certificate"
log "refused as expected: $(tail -1 "$E2E_TMP/rejoin1.out")"

step "5b. clear-key + a new invite: crm rejoins with the same key and is reachable again"
e2e_admin clear-key --node-key "${KEY[crm]}" >"$E2E_TMP/clear.out" 2>&1 || fail "admin clear-key failed: $(cat "$E2E_TMP/clear.out")"
e2e_node_join crm role:crm
[ "$(node_key crm)" = "${KEY[crm]}" ] || fail "join changed crm's key"
NEW_CRM_CERT="$(node_cert_id crm)"
[ "$NEW_CRM_CERT" != "$CRM_CERT" ] || fail "join kept the revoked certificate"
e2e_node_start crm --peer "$SUP_ADDR"
wait_until "$E2E_TIMEOUT" "supervisor has a session with the rejoined crm" has_peer supervisor "${KEY[crm]}"
for a in finance "$GOSSIP_ONLY"; do
    wait_until "$E2E_TIMEOUT" "$a routes to the rejoined crm via supervisor" has_route "$a" "${KEY[crm]}" "${KEY[supervisor]}" 2
done
node_ok supervisor 'any(p["node_public_key"] == a[0] and p["cert_id"] == a[1] for p in d["peers"])' \
    "${KEY[crm]}" "$NEW_CRM_CERT" || fail "supervisor's session with crm does not carry the new certificate"
e2e_message finance crm rejoined "welcome back crm"
e2e_message crm finance rejoined-back "crm is back"

step "5c. superseded: a new invite alone lets finance rejoin with the same key"
FIN_CERT="$(node_cert_id finance)"
S2="$(e2e_na_crl_sequence)"
e2e_admin revoke --node-key "${KEY[finance]}" --reason superseded >"$E2E_TMP/revoke2.out" 2>&1 ||
    fail "admin revoke --node-key failed: $(cat "$E2E_TMP/revoke2.out")"
[ "$(e2e_na_crl_sequence)" -gt "$S2" ] || fail "CRL sequence did not increase on the second revocation"
e2e_na_crl_revokes "$FIN_CERT" superseded || fail "the NA's CRL does not list finance as superseded"
for a in supervisor crm "$GOSSIP_ONLY"; do
    wait_until "$E2E_TIMEOUT" "$a has no route to finance" no_route "$a" "${KEY[finance]}"
    wait_until "$E2E_TIMEOUT" "$a has no session with finance" no_peer "$a" "${KEY[finance]}"
done
# The earlier revocation still holds for crm's old certificate, the new one is fine.
has_peer supervisor "${KEY[crm]}" || fail "the second revocation dropped crm"
e2e_node_stop finance || true
e2e_node_join finance role:finance
[ "$(node_key finance)" = "${KEY[finance]}" ] || fail "join changed finance's key"
[ "$(node_cert_id finance)" != "$FIN_CERT" ] || fail "finance kept its revoked certificate"
e2e_node_start finance --peer "$SUP_ADDR"
wait_until "$E2E_TIMEOUT" "crm routes to the rejoined finance" has_route crm "${KEY[finance]}" "${KEY[supervisor]}" 2
e2e_message crm finance fin-back "finance is back"

e2e_finish
