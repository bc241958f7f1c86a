#!/usr/bin/env bash
# Binary frames of the local API (docs/local-api.md "Binary frames") end to end, with a real NA
# and nodes on loopback and a Python frames client (tests/api_frames_client.py): payloads of 0,
# 1, 256 (every byte value) and max bytes arrive unchanged (also to a JSON-only subscriber, in
# base64), max+1 is refused with too_big naming the frame and the connection stays usable; hello
# agrees to frames 2, 1 or 0 (a newer version gets 2); a capability request with the access
# policy's note reaches a frames-2 subscriber as a noted frame (a frames-1 one, and one too big
# for a frame with its note, as the JSON event); a bad head is refused and closes the
# connection; a send without a route is reported to its sender and counted; a slow subscriber slows the sender down (its node stops reading it) and loses
# nothing; a subscriber that stops reading is cut off, told and counted, and the sender goes on;
# frames the node reads at once leave on the link in one write and reach a frames subscriber
# in one write; a subscriber's socket takes 300 kB (more than a default send buffer) while it
# does not read (nothing queued in the node); a C program streams on the public API
# (bench/bench_pump.c) without loss.
. "$(dirname "$0")/lib_e2e.sh"
FC="$(dirname "$0")/api_frames_client.py"
sock() { printf '%s/node.sock' "$(node_dir "$1")"; }

step "network: NA, a sender node and a receiver node"
e2e_na_start
for n in tx rx; do e2e_node_join "$n" role:service; done
e2e_node_start rx
e2e_node_start tx --peer "$(node_addr rx)"
wait_until "$E2E_TIMEOUT" "tx routes to rx" has_route tx "$(node_key rx)"

step "hello: frames are offered only to clients that ask"
node_api tx '{"op":"hello","id":1,"versions":[2]}' | json_ok 'd["ok"] and "frames" not in d' || fail "frames without asking"
node_api tx '{"op":"hello","id":1,"versions":[2],"frames":1}' | json_ok 'd["ok"] and d["frames"] == 1' || fail "frames 1"
node_api tx '{"op":"hello","id":1,"versions":[2],"frames":2}' | json_ok 'd["ok"] and d["frames"] == 2' || fail "frames 2"
node_api tx '{"op":"hello","id":1,"versions":[2],"frames":7}' | json_ok 'd["ok"] and d["frames"] == 2' ||
    fail "a newer frames version does not get the node's highest"
node_api tx '{"op":"hello","id":1,"versions":[2],"frames":1,"frames_max":2}' | json_ok 'd["ok"] and d["frames"] == 2' ||
    fail "frames 1 up to 2"
node_api tx '{"op":"hello","id":1,"versions":[2],"frames":1,"frames_max":9}' | json_ok 'd["ok"] and d["frames"] == 2' ||
    fail "frames 1 up to 9"
node_api tx '{"op":"hello","id":1,"versions":[2],"frames":0,"frames_max":2}' | json_ok 'd["ok"] and d["frames"] == 0' ||
    fail "frames_max without frames"
node_api tx '{"op":"hello","id":1,"versions":[2],"frames":1,"frames_max":"2"}' |
    json_ok 'd["error"]["code"] == "invalid_request" and "frames_max" in d["error"]["message"]' || fail "frames_max not an integer"
node_api tx '{"op":"hello","id":1,"versions":[2],"frames":0}' | json_ok 'd["ok"] and d["frames"] == 0' || fail "frames 0"
node_api tx '{"op":"hello","id":1,"versions":[2],"frames":"1"}' | json_ok 'd["error"]["code"] == "invalid_request"' ||
    fail "frames of the wrong type"

step "payloads of 0, 1, 256 (every byte value), max bytes; max+1 refused clearly"
python3 "$FC" boundaries "$(sock tx)" "$(sock rx)" "$(node_key rx)" "$(node_key tx)" || fail "boundaries"
[ "$(node_metric rx api_frames_out)" -ge 6 ] || fail "message frames not counted at rx"
[ "$(node_metric tx api_frames_in)" -ge 6 ] || fail "send frames not counted at tx"

step "a send without a route is reported to its sender and counted; a bad head closes"
before="$(node_metric tx api_send_failed)"
python3 "$FC" refusals "$(sock tx)" "$(node_key tx | tr 'A-Za-z' 'B-ZAb-za')" || fail "refusals"
[ "$(node_metric tx api_send_failed)" -gt "$before" ] || fail "the refused send was not counted"

step "unsubscribe parks a connection: nothing delivered to it until it subscribes again"
python3 "$FC" park "$(sock tx)" "$(sock rx)" "$(node_key rx)" || fail "park"

step "a request the access policy let in: a noted frame for a frames-2 subscriber, a JSON event for a frames-1 one"
wait_until "$E2E_TIMEOUT" "rx holds an access policy" node_ok rx 'd.get("access_policy") is not None'
python3 "$FC" noted "$(sock tx)" "$(sock rx)" "$(node_key rx)" || fail "noted"

step "a provider loop's subscription (requests_only) gets requests, not the answers to its nested calls"
python3 "$FC" requests-only "$(sock tx)" "$(sock rx)" "$(node_key rx)" || fail "requests_only"

step "frames read at once leave on the link together, and reach the subscriber together (one write for several), none lost"
f0="$(node_metric tx frames_out)" w0="$(node_metric tx link_writes)"
o0="$(node_metric rx api_frames_out)" a0="$(node_metric rx api_writes)"
python3 "$FC" burst "$(sock tx)" "$(sock rx)" "$(node_key rx)" 64 1000 || fail "burst"
f1="$(node_metric tx frames_out)" w1="$(node_metric tx link_writes)"
o1="$(node_metric rx api_frames_out)" a1="$(node_metric rx api_writes)"
log "tx frames_out $f0 -> $f1, link_writes $w0 -> $w1; rx api_frames_out $o0 -> $o1, api_writes $a0 -> $a1"
[ $((f1 - f0)) -ge 64 ] || fail "the burst's 64 frames were not all sent"
[ $(( (w1 - w0) * 2 )) -lt $((f1 - f0)) ] || fail "frames of one read were written one by one"
[ $((o1 - o0)) -ge 64 ] || fail "the burst's 64 messages were not all delivered"
# the metrics requests and the subscriber's hello and subscribe answers are a few writes too
[ $(( (a1 - a0) * 2 )) -lt $((o1 - o0)) ] || fail "messages of one read were written to the subscriber one by one"

step "a subscriber not reading yet: 300 kB (more than a default send buffer) go into its socket at once, none queued in the node"
python3 "$FC" unread "$(sock tx)" "$(sock rx)" "$(node_key rx)" 5 60000 || fail "unread"

step "a slow subscriber slows the sender down and loses nothing"
p0="$(node_metric tx api_paused)" h0="$(node_metric rx api_held)" o0="$(node_metric rx api_overflow)"
python3 "$FC" slow "$(sock tx)" "$(sock rx)" "$(node_key rx)" 400 60000 || fail "slow subscriber"
p1="$(node_metric tx api_paused)" h1="$(node_metric rx api_held)" o1="$(node_metric rx api_overflow)"
log "api_paused at tx $p0 -> $p1, api_held at rx $h0 -> $h1, api_overflow at rx $o0 -> $o1"
[ "$h1" -gt "$h0" ] || fail "rx never held DATA back for its slow subscriber"
[ "$p1" -gt "$p0" ] || fail "tx never stopped reading its sender"
[ "$o1" = "$o0" ] || fail "a subscriber was cut off"
[ "$(node_metric tx e2e_drop_queue)" = 0 ] && [ "$(node_metric tx data_drop_congested)" = 0 ] || fail "dropped in the mesh"

step "a C program streams on the public API (bench_pump: pipelined gm_node_conn_post, one flush): none lost, none refused"
[ -x "$GM_BUILD/bench/bench_pump" ] || fail "bench_pump is not built in $GM_BUILD"
read -r _mbps got taken refused _cpu < <("$GM_BUILD/bench/bench_pump" "$(sock tx)" "$(sock rx)" "$(node_key rx)" 60000 500) ||
    fail "bench_pump failed"
log "bench_pump: received $got, taken $taken, refused $refused"
[ "$got" = 500 ] && [ "$taken" = 500 ] && [ "$refused" = 0 ] || fail "the stream lost or refused messages"
[ "$(node_metric rx api_overflow)" = "$o1" ] || fail "the stream's subscriber was cut off"

step "a subscriber that stops reading is cut off, told and counted; the sender goes on"
python3 "$FC" stuck "$(sock tx)" "$(sock rx)" "$(node_key rx)" 600 60000 || fail "stuck subscriber"
[ "$(node_metric rx api_overflow)" -gt "$o1" ] || fail "the cut-off was not counted"
node_running rx && node_running tx || fail "a node died"
e2e_finish
