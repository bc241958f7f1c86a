#!/usr/bin/env bash
# NA key rotation without re-enrollment (issue 17, part 1), with real processes: a network whose
# NA key is valid for minutes goes through two rotations (genesis rotate, admin genesis publish,
# the NA restarted with the new key) while messages flow both ways without a loss. Proves: nodes
# fetch (hub, a) or are gossiped (b polls nothing) the successor and keep it in their directory,
# renew under the new NA key by themselves, switch to the successor, keep their links and node
# keys (nobody joins again), and end on the newest NA key. Refused: a successor signed by another
# root, for another network, or whose window does not overlap, by `admin genesis publish` and by
# nodes (served to a node by a fake NA: the same code judges what peers gossip). Also: init
# refuses an NA window under a week without --force; the expiry warning in the log and status.
. "$(dirname "$0")/lib_e2e.sh"

step "init refuses an NA key window shorter than a week unless --force"
gm init --dir "$E2E_TMP/short" --na-validity 3d --no-tls >"$E2E_TMP/short.out" 2>&1 &&
    fail "init accepted a 3-day NA window without --force"
grep -q "shorter than a week" "$E2E_TMP/short.out" || fail "init: unclear refusal: $(cat "$E2E_TMP/short.out")"
gm init --dir "$E2E_TMP/short" --na-validity 3x --no-tls >"$E2E_TMP/short.out" 2>&1 && fail "init accepted --na-validity 3x"
grep -q "not a duration" "$E2E_TMP/short.out" || fail "init: unclear duration error: $(cat "$E2E_TMP/short.out")"

step "network: NA key valid 15 minutes, a hub, a and b (b polls nothing: it learns by gossip)"
E2E_INIT_ARGS="--na-validity 15m --force" E2E_NA_CONFIG='{"supersede_grace_s": 10}' e2e_na_start
NA_PORT="$(tr -d '[:space:]' <"$E2E_NET.port")"
for n in hub a b; do e2e_node_join "$n" role:service:agent; done
declare -A KEY0=()
for n in hub a b; do KEY0[$n]="$(node_key "$n")"; done
e2e_node_start hub --crl-poll-ms 300 --na-warn-before 30m
e2e_node_start a --peer "$(node_addr hub)" --crl-poll-ms 300
e2e_node_start b --peer "$(node_addr hub)" --crl-poll-ms 0
for n in a b; do wait_until "$E2E_TIMEOUT" "hub routes to $n" has_route hub "$(node_key "$n")"; done
wait_until "$E2E_TIMEOUT" "a routes to b" has_route a "$(node_key b)"
wait_until "$E2E_TIMEOUT" "b routes to a" has_route b "$(node_key a)"

step "the NA key ends within --na-warn-before: the hub warns (log and status)"
wait_until "$E2E_TIMEOUT" "hub logged na_key_expiring" grep -q '"na_key_expiring"' "$(node_dir hub)/node.log"
gm status --dir "$(node_dir hub)" --na-warn-before 30m >"$E2E_TMP/status.out" 2>&1 || true
grep -q "warning: .*NA key ends soon" "$E2E_TMP/status.out" || fail "status shows no NA key warning: $(cat "$E2E_TMP/status.out")"

# Traffic during everything below: a and b send to each other every 0.2 s; every send must be
# accepted by the node and every message must arrive.
STOP="$E2E_TMP/traffic.stop"
traffic() {
    local from="$1" to="$2" i=0 dest
    dest="$(node_key "$to")"
    while [ ! -e "$STOP" ]; do
        i=$((i + 1))
        if "$GM_BIN" send --dir "$(node_dir "$from")" --to "$dest" --port rot "$from-$i" >>"$E2E_TMP/send-$from.out" 2>&1; then
            echo "$i" >"$E2E_TMP/sent-$from"
        else
            echo "$i" >>"$E2E_TMP/failed-$from"
        fi
        sleep 0.2
    done
}
: >"$E2E_TMP/failed-a"
: >"$E2E_TMP/failed-b"
# receivers without a time limit (e2e_recv_start stops after 2 x E2E_TIMEOUT)
for n in a b; do
    "$GM_BIN" recv --dir "$(node_dir "$n")" --port rot --json >"$E2E_TMP/recv-$n.json" 2>"$E2E_TMP/recv-$n.err" &
    E2E_PIDS+=("$!")
done
traffic a b &
TRAFFIC_A=$!
E2E_PIDS+=("$TRAFFIC_A")
traffic b a &
TRAFFIC_B=$!
E2E_PIDS+=("$TRAFFIC_B")
wait_until "$E2E_TIMEOUT" "traffic flows" test -s "$E2E_TMP/recv-b.json"

step "bad successors are refused by admin genesis publish"
gm genesis keygen --out "$E2E_TMP/other-root" --key-id rs-other >/dev/null
gm genesis keygen --out "$E2E_TMP/na-x" >/dev/null
# bad_block NAME ROOT_PUB ROOT_KEY NETWORK [create args...]: a v0.9 block signed by ROOT_KEY (a
# version above every rotation below, so that only the rule it breaks refuses it)
bad_block() {
    local name="$1" pub="$2" key="$3" net="$4"; shift 4
    gm genesis create --network "$net" --root-pub "$pub" --na-pub "$E2E_TMP/na-x.pub" --out "$E2E_TMP/$name.json" \
        "$@" >/dev/null || fail "genesis create $name"
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1])); d["network_version"] = "v0.9"
json.dump(d, open(sys.argv[1], "w"), indent=2)' "$E2E_TMP/$name.json"
    gm genesis sign --in "$E2E_TMP/$name.json" --root-key "$key" >/dev/null || fail "genesis sign $name"
}
bad_block other-root "$E2E_TMP/other-root.pub" "$E2E_TMP/other-root" "$E2E_NETWORK"
bad_block other-net "$E2E_NET/root.pub" "$E2E_NET/root" OTHERNET
bad_block no-overlap "$E2E_NET/root.pub" "$E2E_NET/root" "$E2E_NETWORK" \
    --valid-from "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)"
for bad in other-root:"another root key" other-net:"for network 'OTHERNET'" no-overlap:"must start inside"; do
    name="${bad%%:*}" why="${bad#*:}"
    e2e_admin genesis publish --file "$E2E_TMP/$name.json" >"$E2E_TMP/pub-$name.out" 2>&1 &&
        fail "the NA accepted the $name successor"
    grep -q "$why" "$E2E_TMP/pub-$name.out" || fail "$name: unclear refusal: $(cat "$E2E_TMP/pub-$name.out")"
done
[ ! -e "$E2E_NET/genesis.next.json" ] || fail "a refused successor was stored by the NA"
# and `genesis rotate` will not sign one that does not overlap either
gm genesis rotate --root-key "$E2E_NET/root" --genesis "$E2E_NET/genesis.json" --na-key-out "$E2E_TMP/na-late" \
    --out "$E2E_TMP/late.json" --valid-from "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)" >"$E2E_TMP/late.out" 2>&1 &&
    fail "genesis rotate signed a successor that does not overlap"
[ ! -e "$E2E_TMP/na-late.key" ] || fail "genesis rotate wrote an NA key for a refused successor"

# holds_next NODE VERSION: NODE's directory keeps the successor VERSION.
holds_next() {
    local f; f="$(node_dir "$1")/genesis.next.json"
    [ -f "$f" ] && json_ok 'd["network_version"] == a[0]' "$2" <"$f"
}

# rotate N NEXT_VERSION VALIDITY: one whole rotation while the traffic goes on.
rotate() {
    local n="$1" ver="$2" validity="$3" node
    step "rotation $n: genesis rotate (offline), admin genesis publish"
    gm genesis rotate --root-key "$E2E_NET/root" --genesis "$E2E_NET/genesis.json" --na-key-out "$E2E_TMP/na$n" \
        --out "$E2E_TMP/rot$n.json" --validity "$validity" >"$E2E_TMP/rotate$n.out" 2>&1 ||
        fail "genesis rotate: $(cat "$E2E_TMP/rotate$n.out")"
    [ "$(stat -c %a "$E2E_TMP/na$n.key")" = 600 ] || fail "the new NA key is not mode 0600"
    json_ok 'd["network_version"] == a[0]' "$ver" <"$E2E_TMP/rot$n.json" || fail "successor is not $ver"
    e2e_admin genesis publish --file "$E2E_TMP/rot$n.json" >"$E2E_TMP/publish$n.out" 2>&1 ||
        fail "admin genesis publish: $(cat "$E2E_TMP/publish$n.out")"
    for node in hub a b; do
        wait_until "$E2E_TIMEOUT" "$node holds successor $ver" holds_next "$node" "$ver"
    done
    grep -q '"genesis_successor".*"source":"peer"\|"source":"peer".*"genesis_successor"' "$(node_dir b)/node.log" ||
        fail "b did not learn the successor by gossip"

    step "rotation $n: the NA restarts with the new NA key and switches to $ver"
    e2e_na_stop
    mv "$E2E_TMP/na$n.key" "$E2E_NET/na.key"
    mv "$E2E_TMP/na$n.pub" "$E2E_NET/na.pub"
    "$GM_BIN" na start --dir "$E2E_NET" --listen "127.0.0.1:$NA_PORT" >>"$E2E_NET/na.log" 2>&1 &
    E2E_NA_PID=$!
    E2E_PIDS+=("$E2E_NA_PID")
    wait_until "$E2E_TIMEOUT" "the NA answers again" e2e_na_crl_sequence
    json_ok 'd["network_version"] == a[0]' "$ver" <"$E2E_NET/genesis.json" || fail "the NA did not switch to $ver"
    grep -q "switched to the successor genesis block $ver" "$E2E_NET/na.log" || fail "the NA did not log the switch"

    step "rotation $n: every node renews under the new NA key and switches to $ver"
    for node in hub a b; do
        wait_until "$E2E_TIMEOUT" "$node is on $ver with a certificate of the new NA key" \
            node_ok "$node" 'd["genesis"]["network_version"] == a[0] and d["genesis"]["own_cert_na_key_current"]' "$ver"
        json_ok 'd["network_version"] == a[0]' "$ver" <"$(node_dir "$node")/genesis.json" ||
            fail "$node's genesis.json is not $ver"
        gm cert verify "$(node_dir "$node")/cert.json" --genesis "$E2E_NET/genesis.json" >"$E2E_TMP/verify.out" 2>&1 ||
            fail "$node's certificate does not verify under $ver: $(cat "$E2E_TMP/verify.out")"
    done
}
rotate 2 v0.2 20m
rotate 3 v0.3 25m

step "links never dropped, nobody enrolled again, every message arrived"
touch "$STOP"
wait "$TRAFFIC_A" "$TRAFFIC_B"
for n in a b; do
    [ ! -s "$E2E_TMP/failed-$n" ] || fail "$n: sends refused by the node: $(tr '\n' ' ' <"$E2E_TMP/failed-$n")"
done
sent_a="$(cat "$E2E_TMP/sent-a")" sent_b="$(cat "$E2E_TMP/sent-b")"
lines() { grep -c . "$1" || true; }
wait_until "$E2E_TIMEOUT" "b received all $sent_a messages of a" test "$(lines "$E2E_TMP/recv-b.json")" -ge "$sent_a"
wait_until "$E2E_TIMEOUT" "a received all $sent_b messages of b" test "$(lines "$E2E_TMP/recv-a.json")" -ge "$sent_b"
log "traffic: a sent $sent_a, b sent $sent_b, zero failed"
for n in hub a b; do
    [ "$(node_key "$n")" = "${KEY0[$n]}" ] || fail "$n has a new node key"
    ! grep -q '"handshake_refused"\|"cert_refused"\|"crl_refused"' "$(node_dir "$n")/node.log" ||
        fail "$n refused something during the rotations: $(grep -m3 '_refused"' "$(node_dir "$n")/node.log")"
done
has_peer hub "$(node_key a)" && has_peer hub "$(node_key b)" || fail "the hub lost a link"
# one join per node (hub, a, b): the NA lists renewals only, no second enrollment
e2e_admin nodes --json >"$E2E_TMP/nodes.json" || fail "admin nodes"
json_ok 'len({n["node_public_key"] for n in d["nodes"]}) == 3' <"$E2E_TMP/nodes.json" ||
    fail "admin nodes: $(cat "$E2E_TMP/nodes.json")"

step "bad successors are refused by a node (served by a fake NA: the judge of gossip too)"
mkdir -p "$E2E_TMP/fake-na"
cp "$E2E_TMP/other-root.json" "$E2E_TMP/fake-na/genesis"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$E2E_TMP/fake-na" >"$E2E_TMP/fake-na.log" 2>&1 &
E2E_PIDS+=("$!")
fake_port() { grep -o 'port [0-9]*' "$E2E_TMP/fake-na.log" | head -1 | cut -d' ' -f2; }
fake_listens() { [ -n "$(fake_port)" ]; }
wait_until $((E2E_TIMEOUT * 3)) "the fake NA listens" fake_listens
e2e_node_join probe role:service:agent
e2e_node_start probe --na "http://127.0.0.1:$(fake_port)" --crl-poll-ms 200
wait_until "$E2E_TIMEOUT" "probe refused the other root's block" grep -q 'genesis_refused.*another root key' "$(node_dir probe)/node.log"
cp "$E2E_TMP/other-net.json" "$E2E_TMP/fake-na/genesis"
wait_until "$E2E_TIMEOUT" "probe refused another network's block" grep -q "genesis_refused.*for network 'OTHERNET'" "$(node_dir probe)/node.log"
cp "$E2E_TMP/no-overlap.json" "$E2E_TMP/fake-na/genesis"
wait_until "$E2E_TIMEOUT" "probe refused a block without overlap" grep -q 'genesis_refused.*must start inside' "$(node_dir probe)/node.log"
[ ! -e "$(node_dir probe)/genesis.next.json" ] || fail "probe kept a refused successor"
e2e_node_stop probe || fail "probe did not stop cleanly"

step "a node restarted after the rotations starts on the newest block"
e2e_node_stop a || fail "a did not stop cleanly"
e2e_node_start a --peer "$(node_addr hub)" --crl-poll-ms 300
wait_until "$E2E_TIMEOUT" "a routes to b again" has_route a "$(node_key b)"
e2e_message a b app "after the restart"
e2e_finish
