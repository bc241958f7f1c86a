#!/usr/bin/env bash
# join into a directory that already holds a certificate, and re-enrolling after a compromise:
# - roles come from invites: a join whose invite gives other roles than the certificate D holds
#   exits 1 and changes nothing in D (cert.json and node.key byte for byte); the same roles
#   replace it; --force-role replaces it with the other roles;
# - join --new-key enrolls a fresh key: the old node.key / node.pub are kept as
#   node.key.old-<time> (0600, the old key), the new certificate is for the new key, and a key
#   blocked for key_compromise can be replaced that way (without --new-key the NA refuses);
#   a --new-key join that fails (bad token) keeps the old key in place;
# - admin nodes shows short keys, --wide whole keys.
. "$(dirname "$0")/lib_e2e.sh"

D="$(node_dir x)"
sum() { sha256sum "$1" | awk '{print $1}'; }
roles_of() { json_q '",".join(sorted(d["roles"]))' <"$D/cert.json"; }
join_x() { gm join --na "$E2E_NA_URL" --dir "$D" "$@" >"$E2E_TMP/join.out" 2>&1; }

e2e_na_start

step "a first join with an invite for role:a"
join_x --token "$(e2e_invite role:a)" || fail "join: $(cat "$E2E_TMP/join.out")"
[ "$(roles_of)" = "role:a" ] || fail "roles $(roles_of)"
KEY1="$(node_key x)"

step "an invite for role:b does not replace the role:a certificate"
CERT_SUM="$(sum "$D/cert.json")" KEY_SUM="$(sum "$D/node.key")"
rc=0; join_x --token "$(e2e_invite role:b)" || rc=$?
[ "$rc" = 1 ] || fail "join with another role: exit $rc: $(cat "$E2E_TMP/join.out")"
grep -q "is for roles role:a, but this invite gives roles role:b: refusing to replace it" "$E2E_TMP/join.out" ||
    fail "no clear refusal: $(cat "$E2E_TMP/join.out")"
grep -q -- "--force-role" "$E2E_TMP/join.out" || fail "the refusal does not name --force-role"
[ "$(sum "$D/cert.json")" = "$CERT_SUM" ] && [ "$(sum "$D/node.key")" = "$KEY_SUM" ] ||
    fail "the refused join changed the directory"
log "ok - refused: $(tail -1 "$E2E_TMP/join.out" | cut -c1-160)"

step "the same role replaces it; --force-role replaces it with another"
join_x --token "$(e2e_invite role:a)" || fail "join with the same role: $(cat "$E2E_TMP/join.out")"
[ "$(sum "$D/cert.json")" != "$CERT_SUM" ] && [ "$(roles_of)" = "role:a" ] || fail "same-role join did not renew cert.json"
join_x --token "$(e2e_invite role:b)" --force-role || fail "join --force-role: $(cat "$E2E_TMP/join.out")"
[ "$(roles_of)" = "role:b" ] || fail "--force-role: roles $(roles_of)"
[ "$(node_key x)" = "$KEY1" ] || fail "--force-role changed the key"

step "a --new-key join that fails keeps the old key"
KEY_SUM="$(sum "$D/node.key")"
rc=0; join_x --token not-a-real-token --new-key || rc=$?
[ "$rc" = 1 ] || fail "bad token: exit $rc"
[ "$(sum "$D/node.key")" = "$KEY_SUM" ] || fail "a failed --new-key join replaced node.key"
ls "$D" | grep -q 'node.key.old-' && fail "a failed --new-key join moved the key aside"

step "after a key compromise: the old key is blocked, join --new-key re-enrolls"
e2e_admin revoke --node-key "$KEY1" --reason key_compromise >/dev/null 2>&1 || fail "revoke"
rc=0; join_x --token "$(e2e_invite role:b)" || rc=$?
[ "$rc" = 1 ] && grep -qi "compromise" "$E2E_TMP/join.out" || fail "the blocked key joined again: $(cat "$E2E_TMP/join.out")"
join_x --token "$(e2e_invite role:b)" --new-key || fail "join --new-key: $(cat "$E2E_TMP/join.out")"
KEY2="$(node_key x)"
[ "$KEY2" != "$KEY1" ] || fail "--new-key kept the old key"
[ "$(json_q 'd["node_public_key"]' <"$D/cert.json")" = "$KEY2" ] || fail "the certificate is not for the new key"
OLD="$(ls "$D" | grep '^node.key.old-' | head -1)"
[ -n "$OLD" ] || fail "the old key was not kept: $(ls "$D")"
[ "$(stat -c %a "$D/$OLD")" = 600 ] || fail "$OLD has mode $(stat -c %a "$D/$OLD")"
[ "$(sum "$D/$OLD")" = "$KEY_SUM" ] || fail "$OLD is not the old key"
ls "$D" | grep -q '^node.pub.old-' || fail "the old node.pub was not kept"
[ "$(stat -c %a "$D/node.key")" = 600 ] || fail "the new node.key has mode $(stat -c %a "$D/node.key")"
gm node start --check --dir "$D" >"$E2E_TMP/check.out" 2>&1 || fail "the re-enrolled node does not check: $(cat "$E2E_TMP/check.out")"
log "ok - re-enrolled with key $KEY2; old key kept as $OLD"

step "admin nodes: short keys by default, whole keys with --wide"
e2e_admin nodes >"$E2E_TMP/nodes.out" 2>&1 || fail "admin nodes: $(cat "$E2E_TMP/nodes.out")"
grep -qF "${KEY2:0:12}.." "$E2E_TMP/nodes.out" || fail "no short key: $(cat "$E2E_TMP/nodes.out")"
grep -qF "$KEY2" "$E2E_TMP/nodes.out" && fail "admin nodes shows whole keys without --wide"
e2e_admin nodes --wide >"$E2E_TMP/nodes.out" 2>&1 || fail "admin nodes --wide: $(cat "$E2E_TMP/nodes.out")"
grep -qF "$KEY2" "$E2E_TMP/nodes.out" && grep -qF "$KEY1" "$E2E_TMP/nodes.out" ||
    fail "admin nodes --wide lacks a whole key: $(cat "$E2E_TMP/nodes.out")"
grep -F "$KEY1" "$E2E_TMP/nodes.out" | grep -q "key blocked" || fail "--wide lost the status column"
e2e_finish
