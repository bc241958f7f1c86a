#!/usr/bin/env bash
# End-to-end test of the command line itself: every command and subcommand of the table
# (`genesis-mesh commands`) answers --help with exit 0 and a usage on stdout naming each of its
# options; usage errors (unknown option or subcommand, missing value, bad numbers) exit 2 with a
# message naming the option and the bad value; `version` and `--version` print the build's one
# version, which the NA also reports in /health and /metrics; the NA's log is the one JSON-lines
# shape (or text with --log-format text).
source "$(dirname "$0")/na_e2e_lib.sh"

# ---------------------------------------------------------------- --help everywhere
gm commands >"$T/table" 2>"$T/err" || fail "genesis-mesh commands: exit $?"
[ ! -s "$T/err" ] || fail "commands wrote to stderr: $(cat "$T/err")"
n_cmds=0
while read -r -a words; do
    path=() opts=()
    for w in "${words[@]}"; do case "$w" in --*) opts+=("$w") ;; *) path+=("$w") ;; esac; done
    args=("${path[@]:1}")
    rc=0
    "$GM_BIN" "${args[@]}" --help >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = 0 ] || fail "'${path[*]} --help' exited $rc: $(cat "$T/err")"
    [ ! -s "$T/err" ] || fail "'${path[*]} --help' wrote to stderr: $(cat "$T/err")"
    grep -q "^usage: ${path[*]}" "$T/out" || fail "'${path[*]} --help' prints no usage: $(head -3 "$T/out")"
    for o in "${opts[@]}"; do
        grep -q -- "  $o\b" "$T/out" || fail "'${path[*]} --help' does not mention $o"
    done
    # a group lists each of its subcommands, and -h works like --help
    if [ "${#opts[@]}" = 0 ] && [ "${#args[@]}" -gt 0 ]; then
        for sub in $(grep "^${path[*]} [a-z-]*\( \|$\)" "$T/table" | awk -v d="${#path[@]}" 'NF > d {print $(d+1)}' | sort -u); do
            grep -q "^  $sub " "$T/out" || fail "'${path[*]} --help' does not list $sub"
        done
    fi
    "$GM_BIN" "${args[@]}" -h >"$T/out2" 2>&1 || fail "'${path[*]} -h' exited $?"
    cmp -s "$T/out" "$T/out2" || fail "'${path[*]} -h' differs from --help"
    n_cmds=$((n_cmds + 1))
done <"$T/table"
[ "$n_cmds" -ge 25 ] || fail "only $n_cmds commands in the table"
grep -q "^genesis-mesh admin invite .*--role" "$T/table" || fail "the table lacks admin invite --role"
pass "--help and -h work on all $n_cmds commands and subcommands (exit 0, usage on stdout, every option named)"

# ---------------------------------------------------------------- usage errors exit 2
# usage_error DESC REGEX ARGS...: exit 2, REGEX on stderr, nothing done
usage_error() {
    local desc="$1" re="$2"; shift 2
    local rc=0
    "$GM_BIN" "$@" >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = 2 ] || fail "$desc: exit $rc, expected 2: $(cat "$T/err")"
    grep -Eq -- "$re" "$T/err" || fail "$desc: message does not match /$re/: $(cat "$T/err")"
    ! grep -q "AddressSanitizer\|runtime error" "$T/err" || fail "$desc: sanitizer report"
    PASSED=$((PASSED + 1))
}
usage_error "ask --timeout-ms abc" "ask: --timeout-ms: 'abc' is not a whole number" ask repo.summary q --timeout-ms abc
usage_error "ask --timeout-ms 0" "ask: --timeout-ms: 0 is out of range" ask repo.summary q --timeout-ms 0
usage_error "ask --timeout-ms=12x" "--timeout-ms: '12x' is not a whole number" ask repo.summary q --timeout-ms=12x
usage_error "recv --count -1" "recv: --count: -1 is out of range" recv --dir "$T" --count -1
usage_error "recv --timeout-ms ' 5'" "recv: --timeout-ms: ' 5' is not a whole number" recv --dir "$T" --timeout-ms ' 5'
usage_error "node --crl-poll-ms 5s" "node start: --crl-poll-ms: '5s' is not a whole number" node start --dir "$T" --crl-poll-ms 5s
usage_error "node --renew-after-s 0" "--renew-after-s: 0 is out of range" node start --dir "$T" --renew-after-s 0
usage_error "invite --hours 0" "admin invite: --hours: 0 is out of range" admin invite --role x --hours 0
usage_error "invite --max-validity-hours 1e3" "--max-validity-hours: '1e3' is not a whole number" admin invite --role x --max-validity-hours 1e3
usage_error "join --validity-hours overflow" "--validity-hours: '99999999999999999999' is not a whole number" \
    join --na http://127.0.0.1:1 --token t --validity-hours 99999999999999999999
usage_error "agent run --ttl -5" "agent run: --ttl: -5 is out of range" agent run --agent-id a --capability repo.summary --ttl -5
usage_error "agent run --sub-timeout-ms abc" "--sub-timeout-ms: 'abc'" agent run --agent-id a --capability planner.answer --sub-timeout-ms abc
usage_error "genesis create --valid-days 1.5" "--valid-days: '1.5' is not a whole number" \
    genesis create --network N --root-pub r --na-pub n --out o --valid-days 1.5
usage_error "na start --log-format xml" "na start: --log-format: 'xml' is not one of json, text" na start --dir "$T" --log-format xml
usage_error "node start --log-level loud" "--log-level: 'loud' is not one of debug, info, warn, error" node start --dir "$T" --log-level loud
usage_error "unknown option" "admin invite: unknown option '--frobnicate'" admin invite --role x --frobnicate
usage_error "missing value" "admin nodes: --node-key needs a value" admin nodes --node-key
usage_error "unknown subcommand" "na: unknown subcommand 'stop'" na stop
usage_error "unknown command" "unknown command 'frobnicate'" frobnicate
usage_error "extra argument" "genesis show: unexpected argument 'b.json'" genesis show a.json b.json
usage_error "group without subcommand" "usage: genesis-mesh admin" admin
[ ! -e "$T/o" ] || fail "a usage error created a file"
pass "usage errors exit 2 and name the option and the bad value (${PASSED} checks)"

# ---------------------------------------------------------------- version
want="$(sed -n 's/^project(genesis_mesh VERSION \([0-9.]*\).*/\1/p' "${GM_SOURCE:-$(dirname "$0")/..}/CMakeLists.txt")"
[ -n "$want" ] || fail "no VERSION in CMakeLists.txt"
[ "$(gm version)" = "genesis-mesh $want" ] || fail "version: $(gm version), expected $want"
[ "$(gm --version)" = "genesis-mesh $want" ] || fail "--version: $(gm --version)"
pass "version and --version print genesis-mesh $want"

# ---------------------------------------------------------------- the NA: version and log shape
na_init
na_start
http GET /health
grep -q "\"version\":\"$want\"" "$T/resp" || fail "/health has no version $want: $(cat "$T/resp")"
http GET /metrics
grep -q "^genesis_mesh_build_info{version=\"$want\"} 1$" "$T/resp" || fail "/metrics has no build_info: $(grep build "$T/resp")"
pass "the NA reports version $want in /health and as genesis_mesh_build_info in /metrics"
http GET /genesis # logged (a 200 of /health or /metrics is a routine poll, not logged)

python3 - "$T/na.log" <<'PY' || fail "the NA log is not the one JSON-lines shape: $(head -5 "$T/na.log")"
import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    assert list(r)[:4] == ["ts", "level", "component", "msg"], r
    assert r["level"] in ("debug", "info", "warn", "error") and r["component"] == "na", r
    n += 1
assert n >= 3, n  # startup line and the requests above
PY
grep -q '"msg":"[0-9a-f-]* GET /genesis -> 200' "$T/na.log" || fail "no access log record for GET /genesis"
! grep -q 'GET /health -> 200' "$T/na.log" || fail "the NA logged a routine /health poll"
na_stop
rm -f "$T/na.port"
"$GM_BIN" na start --dir "$OP" --listen 127.0.0.1:0 --plain-http --port-file "$T/na.port" --log "$T/na-text.log" \
    --log-format text --log-level warn >"$T/na2.out" 2>&1 &
NA_PID=$!
STARTED+=("$NA_PID")
wait_until 30 "the NA writes its port" test -s "$T/na.port"
NA_URL="http://127.0.0.1:$(tr -d '[:space:]' <"$T/na.port")"
wait_until 30 "the NA answers /health" curl -sf "$NA_URL/health"
na_stop
[ ! -s "$T/na-text.log" ] || fail "--log-level warn still logged info records: $(cat "$T/na-text.log")"
rm -f "$T/na.port"
"$GM_BIN" na start --dir "$OP" --listen 127.0.0.1:0 --plain-http --port-file "$T/na.port" --log "$T/na-text.log" \
    --log-format text >"$T/na2.out" 2>&1 &
NA_PID=$!
STARTED+=("$NA_PID")
wait_until 30 "the NA writes its port" test -s "$T/na.port"
NA_URL="http://127.0.0.1:$(tr -d '[:space:]' <"$T/na.port")"
wait_until 30 "the NA answers /health" curl -sf "$NA_URL/health"
curl -sf -o /dev/null "$NA_URL/genesis"
na_stop
grep -Eq '^[0-9T:.-]+Z info  na: [0-9a-f-]+ GET /genesis -> 200' "$T/na-text.log" || fail "no text record: $(cat "$T/na-text.log")"
! grep -q '^{' "$T/na-text.log" || fail "JSON in the text log"
grep -Eq "info  na: NA 'E2ENA' serving (HTTPS|plain HTTP \(no TLS\)) on port" "$T/na-text.log" || fail "the program's own records are not in the log"
[ ! -s "$T/na2.out" ] || fail "the NA wrote to stderr despite --log: $(cat "$T/na2.out")"
pass "the NA log: JSON lines by default, text with --log-format text, --log FILE, --log-level filters"

echo "PASS: e2e_cli ($PASSED checks)"
