#!/usr/bin/env bash
# The access policy end to end, with a real NA, nodes and a finance agent (star around the
# supervisor; crm also dials finance; support polls the NA only once an hour, so it learns
# new policies from its peers):
#   1. a new network is permissive (policy 0 at every node) and crm may call finance.report;
#   2. an invalid rules file is refused with its line, and nothing changes;
#   3. the operator sets a deny-by-default policy: it reaches every node (support by gossip);
#      crm's direct link to finance is closed; crm's finance.report call is answered
#      "forbidden" by finance's node naming the rule, and never reaches the agent; the
#      supervisor's call is allowed and its executed step names the rule; ports and relays
#      are enforced; every refusal is counted;
#   4. a requester lying about its roles in the request is judged by its certificate;
#   5. a policy update that allows crm reaches every node and crm's call then succeeds;
#   6. a node served a forged, an unparsable or an older policy keeps the one it holds, and
#      keeps it across a restart with the NA unreachable.
. "$(dirname "$0")/lib_e2e.sh"

AGENTS=(supervisor finance crm support)
declare -A KEY

policy_seq() { node_q "$1" '(d.get("access_policy") or {}).get("sequence", -1)'; }
policy_seq_is() { [ "$(policy_seq "$1")" = "$2" ]; }
all_hold() { local a; for a in "$@"; do policy_seq_is "$a" "$WANT" || return 1; done; }
ask_as() { local who="$1"; shift; gm ask "$@" --dir "$(node_dir "$who")" --timeout-ms 10000 >"$ASK_OUT" 2>&1; }
ASK_OUT="$E2E_TMP/ask.out"

step "network: NA, four nodes, a finance agent"
e2e_na_start
for a in "${AGENTS[@]}"; do e2e_node_join "$a" "role:$a"; KEY[$a]="$(node_key "$a")"; done
e2e_node_start supervisor
SUP="$(node_addr supervisor)"
e2e_node_start finance --peer "$SUP"
e2e_node_start crm --peer "$SUP" --peer "$(node_addr finance)"
e2e_node_start support --peer "$SUP" --crl-poll-ms 3600000 --crl-watch-s -1
wait_until "$E2E_TIMEOUT" "crm links finance directly" has_peer crm "${KEY[finance]}"
for a in finance crm support; do
    wait_until "$E2E_TIMEOUT" "$a routes to supervisor" has_route "$a" "${KEY[supervisor]}" "${KEY[supervisor]}" 1
done
cat >"$E2E_TMP/ledger.json" <<'EOF'
{"name": "ledger", "description": "Q3 revenue 1.2M, costs 0.9M.", "source": "finance fixture"}
EOF
"$GM_BIN" agent run --dir "$(node_dir finance)" --agent-id ledger --capability finance.report \
    --fixture "$E2E_TMP/ledger.json" --log "$E2E_TMP/agent-ledger.log" >>"$E2E_TMP/agent-ledger.out" 2>&1 &
E2E_PIDS+=("$!")
wait_until "$E2E_TIMEOUT" "ledger is registered" \
    sh -c "'$GM_BIN' agents --dir '$(node_dir supervisor)' --json | grep -q '\"ledger\"'"

step "1. a new network is permissive"
WANT=0
wait_until "$E2E_TIMEOUT" "every node holds policy 0" all_hold "${AGENTS[@]}"
test -s "$E2E_NET/access-policy.json" || fail "init wrote no access-policy.json"
ask_as crm finance.report "how was Q3?" || fail "crm's call under the permissive policy failed: $(cat "$ASK_OUT")"
grep -q "authorized: access policy 0, default allow" "$ASK_OUT" ||
    fail "the executed step does not say which policy allowed it: $(cat "$ASK_OUT")"

step "2. an invalid policy is refused with its line, and nothing changes"
printf 'default deny\nallow role:supervisor capability *\nallow role:crm capabilites crm.*\n' >"$E2E_TMP/bad.rules"
rc=0
e2e_admin policy set "$E2E_TMP/bad.rules" >"$E2E_TMP/bad.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "admin policy set accepted a bad file"
grep -q "line 3: unknown kind 'capabilites'" "$E2E_TMP/bad.out" || fail "no line and reason: $(cat "$E2E_TMP/bad.out")"
# The NA checks too (a client that skips the local check gets the same answer).
rc=0
e2e_admin request POST /admin/policy --body '{"rules":"default deny\nallow * porte x\n"}' >"$E2E_TMP/bad2.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q "invalid_policy.*line 2: unknown kind 'porte'" "$E2E_TMP/bad2.out" ||
    fail "the NA did not refuse a bad policy with its line: $(cat "$E2E_TMP/bad2.out")"
"$GM_BIN" policy show --na "$E2E_NA_URL" --json | json_ok 'd["sequence"] == 0' || fail "a refused policy changed the NA's"

step "3. deny by default: crm may not call finance.*"
cat >"$E2E_TMP/policy1.rules" <<'EOF'
# test policy: deny what is not listed
default deny
allow role:supervisor capability *
deny  role:crm capability finance.*
allow role:crm capability crm.*
allow * port capability,chat
allow role:supervisor port *
deny  role:crm peer role:finance
allow * peer *
deny  role:supervisor relay role:support
allow * relay *
EOF
cp "$E2E_NET/access-policy.json" "$E2E_TMP/policy0.json"
e2e_admin policy set "$E2E_TMP/policy1.rules" >"$E2E_TMP/set1.out" 2>&1 || fail "policy set: $(cat "$E2E_TMP/set1.out")"
WANT=1
wait_until "$E2E_TIMEOUT" "every node holds policy 1 (support by gossip)" all_hold "${AGENTS[@]}"
grep -q '"event":"policy_updated".*"source":"peer"' "$(node_dir support)/node.log" ||
    fail "support did not learn policy 1 from a peer"
wait_until "$E2E_TIMEOUT" "the crm-finance link is closed" no_peer crm "${KEY[finance]}"
metric_above finance '^policy_denied_peer$' 0 || metric_above crm '^policy_denied_peer$' 0 ||
    fail "the closed link was not counted"
"$GM_BIN" policy check --dir "$(node_dir crm)" --role role:crm --capability finance.report >"$E2E_TMP/check.out" && 
    fail "policy check allowed crm finance.report"
grep -q "rule 2: deny role:crm capability finance.\*" "$E2E_TMP/check.out" || fail "check: $(cat "$E2E_TMP/check.out")"
requests_before="$(grep -c '"request"\|request' "$E2E_TMP/agent-ledger.log" || true)"
# Discovery is filtered by the NA for crm's roles: crm does not even see ledger (the
# supervisor does), so it does not ask.
"$GM_BIN" agents --dir "$(node_dir crm)" --capability finance.report --json >"$E2E_TMP/agents-crm.out" 2>&1 ||
    fail "agents --dir crm: $(cat "$E2E_TMP/agents-crm.out")"
json_ok 'd == []' <"$E2E_TMP/agents-crm.out" || fail "the NA showed crm a finance.report provider: $(cat "$E2E_TMP/agents-crm.out")"
"$GM_BIN" agents --dir "$(node_dir supervisor)" --capability finance.report --json >"$E2E_TMP/agents-sup.out" 2>&1 ||
    fail "agents --dir supervisor: $(cat "$E2E_TMP/agents-sup.out")"
json_ok 'len(d) == 1' <"$E2E_TMP/agents-sup.out" || fail "the supervisor does not see ledger: $(cat "$E2E_TMP/agents-sup.out")"
rc=0
ask_as crm finance.report "how was Q3?" || rc=$?
[ "$rc" -eq 1 ] || fail "crm's finance.report call was not refused (exit $rc): $(cat "$ASK_OUT")"
grep -q "forbidden.*rule 2: deny role:crm capability finance" "$ASK_OUT" ||
    fail "the refusal does not name the rule: $(cat "$ASK_OUT")"
# A requester that does not know the policy (its copy gone) finds no provider: the NA decides.
# (The provider's node refuses such a request on its own too: step 4.)
rm "$(node_dir crm)/access-policy.json"
rc=0
ask_as crm finance.report "how was Q3?" || rc=$?
[ "$rc" -ne 0 ] || fail "crm's call without a local policy was not refused: $(cat "$ASK_OUT")"
grep -q "no usable provider of finance.report (0 listed by the NA" "$ASK_OUT" ||
    fail "the NA listed a provider to crm without its local policy: $(cat "$ASK_OUT")"
[ "$(grep -c '"request"\|request' "$E2E_TMP/agent-ledger.log" || true)" = "$requests_before" ] ||
    fail "the refused request reached the agent"
ask_as supervisor finance.report "how was Q3?" || fail "supervisor's call failed: $(cat "$ASK_OUT")"
grep -q "authorized: access policy 1, rule 1: allow role:supervisor capability" "$ASK_OUT" ||
    fail "the executed step does not name the rule: $(cat "$ASK_OUT")"
e2e_message supervisor finance billing "invoice 42"
e2e_send crm finance billing "not allowed"
wait_until "$E2E_TIMEOUT" "finance refuses crm's message to port billing" metric_above finance '^policy_denied_port$' 0
in_ns "" "$GM_BIN" send --dir "$(node_dir support)" --to "${KEY[finance]}" --port chat "via the supervisor" \
    >/dev/null 2>&1 || true
wait_until "$E2E_TIMEOUT" "the supervisor does not relay for support" metric_above supervisor '^policy_denied_relay$' 0

step "4. a requester lying about its roles is judged by its certificate"
denied_before="$(node_metric finance '^policy_denied_capability$')"
RID="$(python3 -c 'import uuid; print(uuid.uuid4())')"
LIE="$(python3 - "$RID" "${KEY[crm]}" <<'EOF'
import datetime, json, sys
dl = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({"type": "capability_request", "request_id": sys.argv[1], "capability": "finance.report",
                  "requester": sys.argv[2], "input": {"question": "Q3?"}, "deadline": dl,
                  "roles": ["role:supervisor"], "requester_roles": ["role:supervisor"]}))
EOF
)"
OUT="$E2E_TMP/lie.json"
e2e_recv_start crm capability 1 "$OUT"
e2e_send crm finance capability "$LIE"
wait_until "$E2E_TIMEOUT" "crm gets finance's answer" test -s "$OUT"
python3 - "$OUT" "$RID" <<'EOF' || fail "the lying request was not refused by rule 2: $(cat "$OUT")"
import base64, json, sys
m = json.loads(open(sys.argv[1]).readline())
r = json.loads(base64.b64decode(m["data"]))
assert r["request_id"] == sys.argv[2] and r["error"]["code"] == "forbidden", r
assert "rule 2: deny role:crm capability finance.*" in r["error"]["message"], r
assert r["provenance"][0]["action"] == "failed" and r["provenance"][0]["signer"] == r["provider"], r
EOF
[ "$(node_metric finance '^policy_denied_capability$')" -gt "$denied_before" ] || fail "the lie was not counted"
grep -q "$RID" "$E2E_TMP/agent-ledger.log" && fail "the lying request reached the agent"

step "5. an operator update allowing crm reaches every node"
sed 's/^deny  role:crm capability finance.\*$/allow role:crm capability finance.*/' "$E2E_TMP/policy1.rules" \
    >"$E2E_TMP/policy2.rules"
e2e_admin policy set "$E2E_TMP/policy2.rules" >"$E2E_TMP/set2.out" 2>&1 || fail "policy set: $(cat "$E2E_TMP/set2.out")"
WANT=2
wait_until "$E2E_TIMEOUT" "every node holds policy 2" all_hold "${AGENTS[@]}"
# The figure: from the NA signing policy 2 to the last node installing it (their own clocks).
python3 - "$E2E_NET/access-policy.json" "${AGENTS[@]/#/$E2E_TMP/}" <<'EOF' >&2 || fail "no policy_updated 2 in the node logs"
import datetime, json, sys
ts = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
issued = ts(json.load(open(sys.argv[1]))["issued_at"])
late = []
for d in sys.argv[2:]:
    ev = [json.loads(l) for l in open(d + "/node.log") if '"policy_updated"' in l]
    e = next(e for e in ev if e.get("sequence") == 2)
    late.append(((ts(e["ts"]) - issued).total_seconds() * 1000, d.rsplit("/", 1)[1], e["source"]))
print("policy 2 installed after (ms since the NA signed it): " + ", ".join("%s %.0f (%s)" % (n, t, s) for t, n, s in sorted(late)))
EOF
ask_as crm finance.report "how was Q3?" || fail "crm's call under policy 2 failed: $(cat "$ASK_OUT")"
grep -q "authorized: access policy 2, rule 2: allow role:crm capability finance" "$ASK_OUT" ||
    fail "the executed step does not name the rule: $(cat "$ASK_OUT")"

step "6. forged, unparsable and older policies are refused; the policy survives a restart"
e2e_node_join auditor role:auditor
# A proxy to the NA that serves $SERVED as /access-policy when that file exists.
SERVED="$E2E_TMP/served.json"
cat >"$E2E_TMP/proxy.py" <<'EOF'
import http.server, os, ssl, sys, urllib.request, urllib.error
na, served, port_file, ca = sys.argv[1:5]
# the NA serves HTTPS with the certificate init made: the proxy trusts exactly that one
ctx = ssl.create_default_context(cafile=ca) if na.startswith("https:") else None
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == "/access-policy" and os.path.exists(served):
            body = open(served, "rb").read()
            with open(served + ".hits", "a") as f: f.write("x")
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body); return
        req = urllib.request.Request(na + self.path, headers={k: v for k, v in self.headers.items() if k.lower() == "if-none-match"})
        try:
            r = urllib.request.urlopen(req, timeout=5, context=ctx); code, body, hdrs = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            code, body, hdrs = e.code, e.read(), e.headers
        self.send_response(code)
        if hdrs.get("ETag"): self.send_header("ETag", hdrs["ETag"])
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(port_file, "w").write(str(s.server_address[1]))
s.serve_forever()
EOF
python3 "$E2E_TMP/proxy.py" "$E2E_NA_URL" "$SERVED" "$E2E_TMP/proxy.port" "$E2E_NET/tls.crt" >"$E2E_TMP/proxy.log" 2>&1 &
E2E_PIDS+=("$!")
wait_until "$E2E_TIMEOUT" "the proxy listens" test -s "$E2E_TMP/proxy.port"
PROXY="http://127.0.0.1:$(cat "$E2E_TMP/proxy.port")"
e2e_node_start auditor --na "$PROXY" --crl-poll-ms 200
wait_until "$E2E_TIMEOUT" "auditor holds policy 2" policy_seq_is auditor 2
served_until_seen() { # FILE: serve it until the auditor fetched it twice
    rm -f "$SERVED.hits"; cp "$1" "$SERVED.tmp"; mv "$SERVED.tmp" "$SERVED"
    wait_until "$E2E_TIMEOUT" "auditor fetched $(basename "$1")" sh -c "[ \$(wc -c <'$SERVED.hits' 2>/dev/null || echo 0) -ge 2 ]"
}
python3 - "$E2E_NET/access-policy.json" "$E2E_TMP/forged.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["sequence"] = 99; d["default"] = "allow"; d["rules"] = []
json.dump(d, open(sys.argv[2], "w"))
EOF
refused0="$(node_metric auditor '^policy_refused$')"
served_until_seen "$E2E_TMP/forged.json"
policy_seq_is auditor 2 || fail "auditor took a forged policy"
[ "$(node_metric auditor '^policy_refused$')" -gt "$refused0" ] || fail "the forged policy was not counted"
grep -q '"event":"policy_refused".*not signed by this network' "$(node_dir auditor)/node.log" ||
    fail "the forged policy was not logged as such"
printf '{"sequence": 100, "rules": [' >"$E2E_TMP/garbage.json"
refused1="$(node_metric auditor '^policy_refused$')"
served_until_seen "$E2E_TMP/garbage.json"
policy_seq_is auditor 2 || fail "auditor lost its policy to an unparsable one"
[ "$(node_metric auditor '^policy_refused$')" -gt "$refused1" ] || fail "the unparsable policy was not counted"
served_until_seen "$E2E_TMP/policy0.json"
policy_seq_is auditor 2 || fail "auditor went back to the older policy 0"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["sequence"] == 2' "$(node_dir auditor)/access-policy.json" ||
    fail "auditor's access-policy.json is not policy 2"
e2e_node_stop auditor || fail "auditor did not stop cleanly"
e2e_node_start auditor --na "http://127.0.0.1:1" --peer "$SUP"
policy_seq_is auditor 2 || fail "auditor did not keep policy 2 across a restart: $(policy_seq auditor)"
e2e_finish
