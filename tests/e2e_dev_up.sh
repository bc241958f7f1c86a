#!/usr/bin/env bash
# `genesis-mesh dev up` builds the whole local agent network, runs the demo and the drills,
# and ends with a verdict line; it must pass, exit 0 and leave no process behind. Then the
# facts are checked on the directory it kept, without trusting its own sentences.
set -euo pipefail
GM_BIN="${GM_BIN:-${GM_BUILD:-build}/genesis-mesh}"
[ -x "$GM_BIN" ] || { echo "FAIL: genesis-mesh binary not found (set GM_BIN)" >&2; exit 1; }
T="$(mktemp -d "${TMPDIR:-/tmp}/gm-e2e-devup.XXXXXX")"
trap 'rm -rf "$T"' EXIT
unset LLM_MODEL LLM_API_KEY LLM_BASE_URL
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"

NA_PID=""
trap '[ -n "$NA_PID" ] && kill "$NA_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to check the facts" >&2; exit 77; }

rc=0
# --dir keeps the directory (keys, stores, logs): the facts are checked there afterwards.
"$GM_BIN" dev up --keep --dir "$T/net" >"$T/out" 2>&1 || rc=$?
cat "$T/out"
[ "$rc" -eq 0 ] || { echo "FAIL: dev up exited $rc" >&2; exit 1; }
tail -1 "$T/out" | grep -Eq '^verdict: PASS' || { echo "FAIL: no PASS verdict" >&2; exit 1; }
for want in "8 of 8 nodes have a route to every other node" "4 of 4 agents registered" \
            "crm refused to start" "no node has a route to crm" "answered through repo-agent-b" \
            "crm is refused finance.report by rule 2" "access policy 2 reached 8 of 8 nodes; the last" \
            "crm's finance.report call now succeeds under policy 2" \
            "glossary-py (Python SDK) and stats-exec (--exec) registered" \
            "glossary.define answered by glossary-py (Python), provenance verified" \
            "text.stats answered by stats-exec (--exec), provenance verified"; do
    grep -q "$want" "$T/out" || { echo "FAIL: missing step: $want" >&2; exit 1; }
done
# every process it started is gone (they ran with --dir under $T)
if ps -eo args | grep -F -- "$T/net" | grep -v grep; then
    echo "FAIL: dev up left processes behind" >&2
    exit 1
fi
grep -rl "AddressSanitizer\|runtime error" "$T/net/logs" && { echo "FAIL: sanitizer report in the logs" >&2; exit 1; }

# The facts, checked independently of what dev up printed: the NA (restarted on the kept
# directory) serves a CRL that lists crm's certificate for key_compromise, and every other
# node holds that CRL (status --json of its directory) and stored it in its crl.json.
die() { echo "FAIL: $*" >&2; exit 1; }
for n in supervisor finance crm support repo-agent-a repo-agent-b llm-1 planner-1; do
    [ -s "$T/net/nodes/$n/cert.json" ] || die "node $n has no certificate in $T/net/nodes/$n"
done
"$GM_BIN" na start --dir "$T/net/authority" --listen 127.0.0.1:0 --port-file "$T/na.port" >"$T/na.log" 2>&1 &
NA_PID=$!
for _ in $(seq 1 300); do [ -s "$T/na.port" ] && break; kill -0 "$NA_PID" 2>/dev/null || break; sleep 0.1; done
[ -s "$T/na.port" ] || die "the NA does not start again on the kept directory: $(tail -3 "$T/na.log")"
# dev up's NA serves HTTPS with the certificate init made in its directory
scheme=http; [ -f "$T/net/authority/tls.crt" ] && scheme=https
GM_BIN="$GM_BIN" python3 - "$scheme://127.0.0.1:$(tr -d '[:space:]' <"$T/na.port")" "$T/net/nodes" \
    "$T/net/authority/tls.crt" <<'EOF' || die "facts above"
import json, subprocess, sys, os, ssl, time, urllib.request
url, nodes, ca = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca) if url.startswith("https:") else None
crl = None
for _ in range(100):
    try:
        crl = json.load(urllib.request.urlopen(url + "/crl", timeout=5, context=ctx))
        break
    except OSError:
        time.sleep(0.1)
assert crl, "the restarted NA does not serve /crl"
crm = json.load(open(os.path.join(nodes, "crm", "cert.json")))["cert_id"]
rev = {r["certificate_id"]: r["reason"] for r in crl["revoked_certificates"]}
assert rev.get(crm) == "key_compromise", "the NA's CRL does not list crm's certificate %s: %s" % (crm, rev)
seq = crl["sequence"]
for n in sorted(d for d in os.listdir(nodes) if os.path.isdir(os.path.join(nodes, d))):
    st = json.loads(subprocess.run([os.environ["GM_BIN"], "status", "--dir", os.path.join(nodes, n), "--json"],
                                   check=True, capture_output=True, text=True).stdout)
    assert st["running"] is False, "%s is still running" % n
    if n == "crm":
        continue
    assert (st.get("crl_sequence") or 0) >= seq, "%s holds CRL %s, the NA %s" % (n, st.get("crl_sequence"), seq)
    held = json.load(open(os.path.join(nodes, n, "crl.json")))
    assert any(r["certificate_id"] == crm for r in held["revoked_certificates"]), "%s's crl.json does not list crm" % n
print("facts: NA CRL %d lists crm (%s, key_compromise); every other node holds it" % (seq, crm))
EOF
echo "PASS"
