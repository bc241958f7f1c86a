#!/usr/bin/env bash
# Our node runtime sends POST /heartbeat (node-signed, like /renew) at start and then every
# --heartbeat-s seconds, so the NA's "last seen" of its certificate (admin nodes, the console)
# stays current; --heartbeat-s 0 sends none. Real NA and node processes on loopback.
. "$(dirname "$0")/lib_e2e.sh"

# last_seen NAME: the last_heartbeat the NA lists for NAME's certificate ("null" if none)
last_seen() {
    e2e_admin nodes --json | json_q '[x for x in d["nodes"] if x["cert_id"] == a[0]][0]["last_heartbeat"]' \
        "$(node_cert_id "$1")"
}
seen_after() { local s; s="$(last_seen "$1")"; [ "$s" != null ] && [[ "$s" > "$2" ]]; }

step "start the NA and two nodes"
e2e_na_start
e2e_node_join alpha role:client
e2e_node_join quiet role:client
[ "$(last_seen alpha)" = null ] || fail "alpha was seen before it ran"
e2e_node_start quiet --heartbeat-s 0
e2e_node_start alpha --heartbeat-s 1

step "alpha's heartbeats"
wait_until "$E2E_TIMEOUT" "the NA has a heartbeat of alpha" seen_after alpha 0
FIRST="$(last_seen alpha)"
e2e_admin nodes --json | json_ok '[x for x in d["nodes"] if x["cert_id"] == a[0]][0]["heartbeat_status"] == "healthy"' \
    "$(node_cert_id alpha)" || fail "alpha's heartbeat status"
wait_until "$E2E_TIMEOUT" "a later heartbeat of alpha" seen_after alpha "$FIRST"
# the row shows two times: EXPIRES and LAST SEEN (the latter moves on every second)
[ "$(e2e_admin nodes | grep "$(node_cert_id alpha)" | grep -oE '20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z' | wc -l)" = 2 ] ||
    fail "admin nodes shows no LAST SEEN for alpha: $(e2e_admin nodes)"
log "ok - a running node heartbeats at start and then periodically; admin nodes shows when"

step "quiet sent none"
[ "$(last_seen quiet)" = null ] || fail "--heartbeat-s 0 still sent a heartbeat: $(last_seen quiet)"
e2e_admin nodes | grep "$(node_cert_id quiet)" | grep -q " never " || fail "admin nodes: quiet is not 'never'"
log "ok - --heartbeat-s 0 sends no heartbeat"
e2e_finish
