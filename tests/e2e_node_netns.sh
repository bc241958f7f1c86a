#!/usr/bin/env bash
# The mesh and the revocation drill across network namespaces joined by veth links:
#
#   finance-ns  10.201.1.2 --veth-- 10.201.1.1  supervisor-ns  10.201.2.1 --veth-- 10.201.2.2  crm-ns
#
# There is no link between finance-ns and crm-ns and the supervisor namespace does not
# forward IP (a new namespace starts with ip_forward=0, and the leaves have no default
# route), so the mesh relay through the supervisor node is the only path between them.
# The NA runs in the supervisor namespace on 0.0.0.0: the leaves reach it at the supervisor
# end of their link (10.201.1.1 / 10.201.2.1), the operator at 127.0.0.1 there.
# Needs root (ip netns add); skipped (exit 77) otherwise. Namespaces are removed on exit.
. "$(dirname "$0")/lib_e2e.sh"

[ "$(id -u)" -eq 0 ] || { echo "SKIP: e2e_node_netns needs root to create network namespaces" >&2; exit 77; }
command -v ip >/dev/null || { echo "SKIP: e2e_node_netns needs iproute2 (ip)" >&2; exit 77; }

tag="gm$$"
NS_S="$tag-sup" NS_F="$tag-fin" NS_C="$tag-crm"
for ns in "$NS_S" "$NS_F" "$NS_C"; do
    if ! ip netns add "$ns" 2>"$E2E_TMP/netns.err"; then
        echo "SKIP: ip netns add is not permitted here: $(cat "$E2E_TMP/netns.err")" >&2
        exit 77
    fi
    E2E_CLEANUP+=("ip netns del $ns")
    ip -n "$ns" link set lo up
done

step "links: finance <-> supervisor <-> crm, no finance <-> crm"
# veth names are created in the root namespace first: keep them unique and <= 15 chars.
ip link add "${tag}f" type veth peer name "${tag}sf"
ip link add "${tag}c" type veth peer name "${tag}sc"
E2E_CLEANUP+=("ip link del ${tag}f" "ip link del ${tag}c")
ip link set "${tag}f" netns "$NS_F"
ip link set "${tag}sf" netns "$NS_S"
ip link set "${tag}c" netns "$NS_C"
ip link set "${tag}sc" netns "$NS_S"
ip -n "$NS_F" addr add 10.201.1.2/24 dev "${tag}f"
ip -n "$NS_S" addr add 10.201.1.1/24 dev "${tag}sf"
ip -n "$NS_C" addr add 10.201.2.2/24 dev "${tag}c"
ip -n "$NS_S" addr add 10.201.2.1/24 dev "${tag}sc"
for l in "$NS_F:${tag}f" "$NS_S:${tag}sf" "$NS_C:${tag}c" "$NS_S:${tag}sc"; do
    ip -n "${l%%:*}" link set "${l#*:}" up
done
ip netns exec "$NS_S" sh -c 'echo 0 > /proc/sys/net/ipv4/ip_forward' 2>/dev/null || true
! ip netns exec "$NS_F" ip route get 10.201.2.2 >/dev/null 2>&1 || fail "finance-ns has an IP route to crm-ns"
! ip netns exec "$NS_C" ip route get 10.201.1.2 >/dev/null 2>&1 || fail "crm-ns has an IP route to finance-ns"

step "NA in the supervisor namespace"
E2E_NA_NS="$NS_S"
E2E_NA_LISTEN="0.0.0.0:0"
e2e_na_start
NA_PORT="${E2E_NA_URL##*:}"

NODE_NS[supervisor]="$NS_S"; NODE_LISTEN[supervisor]="0.0.0.0:0"
NODE_NS[finance]="$NS_F";    NODE_LISTEN[finance]="10.201.1.2:0"; NODE_HOST[finance]=10.201.1.2
NODE_NS[crm]="$NS_C";        NODE_LISTEN[crm]="10.201.2.2:0";     NODE_HOST[crm]=10.201.2.2
e2e_node_join supervisor role:supervisor "$E2E_NA_SCHEME://127.0.0.1:$NA_PORT"
e2e_node_join finance role:finance "$E2E_NA_SCHEME://10.201.1.1:$NA_PORT"
e2e_node_join crm role:crm "$E2E_NA_SCHEME://10.201.2.1:$NA_PORT"
declare -A KEY
for a in supervisor finance crm; do KEY[$a]="$(node_key "$a")"; done

step "nodes: each leaf dials the supervisor at its end of the leaf's link"
e2e_node_start supervisor
SUP_PORT="$(node_port supervisor)"
e2e_node_start finance --peer "10.201.1.1:$SUP_PORT"
e2e_node_start crm --peer "10.201.2.1:$SUP_PORT"
wait_until "$E2E_TIMEOUT" "finance routes to crm via supervisor, metric 2" \
    has_route finance "${KEY[crm]}" "${KEY[supervisor]}" 2
wait_until "$E2E_TIMEOUT" "crm routes to finance via supervisor, metric 2" \
    has_route crm "${KEY[finance]}" "${KEY[supervisor]}" 2
node_ok supervisor '
ps = {p["node_public_key"]: p for p in d["peers"]}
a[0] in ps and a[1] in ps and ps[a[0]]["address"].startswith("10.201.1.2:") and ps[a[1]]["address"].startswith("10.201.2.2:")' \
    "${KEY[finance]}" "${KEY[crm]}" || fail "supervisor peers/addresses: $(node_q supervisor 'd["peers"]')"
peer_count_is finance 1 || fail "finance has more than the supervisor as peer"

step "messages across namespaces, through the relay only"
e2e_message finance crm ns-a "finance to crm across namespaces"
e2e_message crm finance ns-b "crm to finance across namespaces"
e2e_message supervisor finance ns-c "supervisor to finance"

step "revocation drill: revoke crm (key_compromise)"
S0="$(e2e_na_crl_sequence)"
CRM_CERT="$(node_cert_id crm)"
e2e_admin revoke --cert-id "$CRM_CERT" --reason key_compromise >"$E2E_TMP/revoke.out" 2>&1 ||
    fail "admin revoke failed: $(cat "$E2E_TMP/revoke.out")"
S1="$(e2e_na_crl_sequence)"
[ "$S1" -gt "$S0" ] || fail "CRL sequence did not increase: $S0 -> $S1"
for a in supervisor finance; do
    wait_until "$E2E_TIMEOUT" "$a holds CRL sequence >= $S1" node_crl_seq_at_least "$a" "$S1"
    wait_until "$E2E_TIMEOUT" "$a has no session with crm" no_peer "$a" "${KEY[crm]}"
    wait_until "$E2E_TIMEOUT" "$a has no route to crm" no_route "$a" "${KEY[crm]}"
done
wait_until "$E2E_TIMEOUT" "finance: send to crm says no route" e2e_send_expect_no_route finance crm
# crm learns it is revoked (NA poll or a peer's CLOSE) and stops by itself with status 1.
wait_until "$E2E_TIMEOUT" "crm stopped by itself" node_exited crm
rc=0; e2e_node_stop crm || rc=$?
[ "$rc" -eq 1 ] || fail "revoked crm exited with status $rc (want 1): $(tail -3 "$(node_dir crm)/node.out")"
e2e_node_start_expect_fail crm "certificate $(node_cert_id crm) is revoked" ||
    fail "revoked crm did not refuse to start: $(cat "$(node_dir crm)/refused.why"): $(tail -5 "$(node_dir crm)/refused.out")"

step "rejoin: refused without clear-key, accepted after it, reachable through the relay"
rc=0
token="$(e2e_invite role:crm)"
ip netns exec "$NS_C" "$GM_BIN" join --na "$E2E_NA_SCHEME://10.201.2.1:$NA_PORT" --token "$token" --dir "$(node_dir crm)" \
    >"$E2E_TMP/rejoin1.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "crm rejoined with a compromised key and no clear-key"
e2e_admin clear-key --node-key "${KEY[crm]}" >"$E2E_TMP/clear.out" 2>&1 || fail "admin clear-key failed: $(cat "$E2E_TMP/clear.out")"
e2e_node_join crm role:crm "$E2E_NA_SCHEME://10.201.2.1:$NA_PORT"
e2e_node_start crm --peer "10.201.2.1:$SUP_PORT"
wait_until "$E2E_TIMEOUT" "finance routes to the rejoined crm via supervisor" \
    has_route finance "${KEY[crm]}" "${KEY[supervisor]}" 2
e2e_message finance crm ns-back "crm is back across namespaces"

e2e_finish
