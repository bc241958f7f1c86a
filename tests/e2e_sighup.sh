#!/usr/bin/env bash
# SIGHUP never kills, and rotates logs: the NA, a node and a shipped agent (gm-agent-repo,
# through `agent run`) each get SIGHUP after their --log file was moved away with `mv` (what
# logrotate does); each is still alive and serving (the NA answers and enrolls, the node's
# API answers and its peer link stays, the agent answers a call), and each writes its next
# lines to a new file at the --log path. The NA also reloads config.json's rate limits on
# SIGHUP (a lowered limit is enforced without a restart; a member that needs a restart is
# named in the log). The provider's node counts the capability requests its agent got. And
# the NA does not log routine polls: a node polling the CRL and
# policy every 200 ms and a run of /health, /ready and /metrics scrapes leave no line in its
# log (they are counted in /metrics), while an error (404) still is logged.
. "$(dirname "$0")/lib_e2e.sh"
. "$(dirname "$0")/agents_e2e_lib.sh"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
NALOG="$E2E_TMP/na-file.log"

# na_get PATH: the NA's answer to GET PATH (the body), trusting its certificate.
na_get() { curl -sS --cacert "$E2E_NET/tls.crt" "$E2E_NA_URL$1"; }
na_status() { curl -sS -o /dev/null -w '%{http_code}' --cacert "$E2E_NET/tls.crt" "$E2E_NA_URL$1"; }
alive() { _pid_running "$1"; }

step "network: the NA (--log), a hub, a provider node with a repo agent, a requester"
e2e_na_start --log "$NALOG"
for n in hub ra asker; do e2e_node_join "$n" role:service:agent; done
e2e_node_start hub --crl-poll-ms 200
for n in ra asker; do e2e_node_start "$n" --peer "$(node_addr hub)"; done
wait_until "$E2E_TIMEOUT" "asker routes to ra" has_route asker "$(node_key ra)"
agent_start repo-1 ra repo.summary --fixture "$SRC/examples/repo-a.json"
APID="${AGENT_PID[repo-1]}"
[ "$(tr '\0' ' ' <"/proc/$APID/cmdline" | awk '{print $1}')" != "" ] || fail "no agent process"
grep -q gm-agent-repo "/proc/$APID/cmdline" || fail "agent run did not exec the shipped gm-agent-repo"
ask_ok "the agent answers before SIGHUP" "provider: repo-1" repo.summary "what is it?" --dir "$(node_dir asker)"
# the provider's node counts the requests that reached its agent, by capability
RA_TEXT="$(node_api ra '{"op":"metrics"}' | json_q 'd["text"]')"
grep -q '^gm_node_capability_requests_total{capability="repo.summary",result="allowed"} [1-9]' <<<"$RA_TEXT" ||
    fail "the provider's node does not count the agent's requests: $(grep capability_requests <<<"$RA_TEXT")"

step "routine polls are not logged, errors are"
CRL304_BEFORE="$(na_get /metrics | sed -n 's/^gm_na_requests_total{method="GET",endpoint="\/crl",status="304"} //p')"
for i in $(seq 1 10); do
    [ "$(na_status /health)" = 200 ] && [ "$(na_status /ready)" = 200 ] && [ "$(na_status /metrics)" = 200 ] ||
        fail "a poll was not answered 200"
done
# the hub polls every 200 ms: wait (bounded) until it made at least 10 more 304 polls
crl_polls_above() {
    local now
    now="$(na_get /metrics | sed -n 's/^gm_na_requests_total{method="GET",endpoint="\/crl",status="304"} //p')"
    [ "${now:-0}" -ge $(( ${CRL304_BEFORE:-0} + 10 )) ]
}
wait_until "$E2E_TIMEOUT" "the hub polled /crl 10 more times (304)" crl_polls_above
[ "$(na_status /no-such-endpoint)" = 404 ] || fail "no 404"
wait_until 10 "the 404 is logged" grep -q 'GET /no-such-endpoint -> 404' "$NALOG"
for p in 'GET /crl -> 304' 'GET /access-policy -> 304' 'GET /health -> 200' 'GET /ready -> 200' 'GET /metrics -> 200'; do
    ! grep -q "$p" "$NALOG" || fail "the NA logged a routine poll: $(grep -m1 "$p" "$NALOG")"
done
na_get /metrics >"$E2E_TMP/metrics"
grep -q '^gm_na_requests_total{method="GET",endpoint="/health",status="200"} 1[0-9]' "$E2E_TMP/metrics" ||
    fail "/health scrapes are not counted"
log "ok - no log line for $(( $(na_get /metrics | sed -n 's/^gm_na_requests_total{method="GET",endpoint="\/crl",status="304"} //p') )) CRL 304s and 30 scrapes; the 404 is logged"

step "SIGHUP after mv of every log: all alive, all write to a new file"
mv "$NALOG" "$NALOG.1"
mv "$(node_dir hub)/node.log" "$(node_dir hub)/node.log.1"
mv "$E2E_TMP/agent-repo-1.log" "$E2E_TMP/agent-repo-1.log.1"
kill -HUP "$E2E_NA_PID" "${NODE_PID[hub]}" "$APID"
wait_until "$E2E_TIMEOUT" "the NA wrote a new log" grep -q '"reloaded"' "$NALOG"
wait_until "$E2E_TIMEOUT" "the hub wrote a new log" grep -q '"event":"reloaded"' "$(node_dir hub)/node.log"
wait_until "$E2E_TIMEOUT" "the agent reopened its log" test -e "$E2E_TMP/agent-repo-1.log"
alive "$E2E_NA_PID" || fail "SIGHUP killed the NA"
node_alive hub || fail "SIGHUP killed the node"
alive "$APID" || fail "SIGHUP killed the agent"
grep -q '"reloaded"' "$NALOG.1" && fail "the NA wrote its reload line to the moved file"
[ "$(na_status /ready)" = 200 ] || fail "the NA is not ready after SIGHUP"
node_running hub || fail "the hub's API does not answer after SIGHUP"
has_peer hub "$(node_key ra)" || fail "the hub lost its link to ra"
ask_ok "the agent answers after SIGHUP" "provider: repo-1" repo.summary "what is it?" --dir "$(node_dir asker)"
wait_until "$E2E_TIMEOUT" "the agent logs the call to its new file" test -s "$E2E_TMP/agent-repo-1.log"
e2e_node_join late role:service:agent
grep -q 'POST /join -> 201' "$NALOG" || fail "the NA logs requests to the new file"
log "ok - NA, node and agent survive SIGHUP and reopen their logs"

step "a second SIGHUP (no mv) appends to the same files"
kill -HUP "$E2E_NA_PID" "${NODE_PID[hub]}" "$APID"
wait_until "$E2E_TIMEOUT" "the NA logged the second reload" test "$(grep -c '"reloaded"' "$NALOG")" -ge 2
wait_until "$E2E_TIMEOUT" "the hub logged the second reload" test "$(grep -c '"event":"reloaded"' "$(node_dir hub)/node.log")" -ge 2
alive "$E2E_NA_PID" && node_alive hub && alive "$APID" || fail "a second SIGHUP killed a process"

step "SIGHUP reloads the NA's rate limits"
python3 - "$E2E_NET/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c.setdefault("rate_limit", {})
c["rate_limit"]["per_ip_per_s"] = 1
c["rate_limit"]["burst"] = 2
c["threads"] = 3
json.dump(c, open(sys.argv[1], "w"), indent=2)
EOF
kill -HUP "$E2E_NA_PID"
wait_until "$E2E_TIMEOUT" "the NA logged the new limits" grep -q 'rate_limit per_ip_per_s 1 burst 2' "$NALOG"
grep -q 'threads changed; it takes effect at the next start' "$NALOG" ||
    grep -q 'connections/timeouts/threads changed' "$NALOG" || fail "a change needing a restart is not named"
# 8 POST /join on one connection, faster than the bucket (1/s) refills
codes="$(python3 - "$E2E_NA_URL" "$E2E_NET/tls.crt" <<'EOF2'
import http.client, ssl, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10)
out = []
for _ in range(8):
    c.request("POST", "/join", body=b"{}", headers={"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    out.append(str(r.status))
print(" ".join(out))
EOF2
)"
case "$codes" in *429*) ;; *) fail "the reloaded limit (burst 2) is not enforced: $codes" ;; esac
[ "$(na_status /health)" = 200 ] || fail "/health"
log "ok - burst 2 enforced after SIGHUP: $codes"

step "a config.json that does not load changes nothing and kills nothing"
echo '{"broken":' >"$E2E_NET/config.json"
kill -HUP "$E2E_NA_PID"
wait_until "$E2E_TIMEOUT" "the NA logged the bad config" grep -q 'reload: config.json unchanged in effect' "$NALOG"
alive "$E2E_NA_PID" || fail "a bad config.json on SIGHUP killed the NA"
[ "$(na_status /ready)" = 200 ] || fail "the NA is not ready after a bad reload"
e2e_finish
