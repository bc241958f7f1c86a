# Shared helpers of the end-to-end tests (sourced, not run): a temp network directory, the NA
# on a free loopback port, nodes invited, joined and started with --port-file, polling with a
# failure bound (never fixed sleeps), JSON field extraction with python3, and a trap that
# stops every process it started and removes every temp file and network namespace.
#
# Usage in a test:
#   . "$(dirname "$0")/lib_e2e.sh"
#   e2e_na_start
#   e2e_node_join supervisor role:supervisor
#   e2e_node_start supervisor
#   wait_until 30 "supervisor is running" node_running supervisor
#
# Environment: GM_BIN (the genesis-mesh binary), GM_BUILD (build dir, fallback for GM_BIN),
# GM_E2E_KEEP=1 keeps the temp directory, GM_E2E_TIMEOUT overrides the default poll bound (s).

set -euo pipefail

if [ -z "${GM_BIN:-}" ]; then
    if [ -n "${GM_BUILD:-}" ] && [ -x "$GM_BUILD/genesis-mesh" ]; then
        GM_BIN="$GM_BUILD/genesis-mesh"
    else
        for c in "$(dirname "${BASH_SOURCE[0]}")/../build-e2e/genesis-mesh" \
                 "$(dirname "${BASH_SOURCE[0]}")/../build/genesis-mesh"; do
            [ -x "$c" ] && GM_BIN="$c" && break
        done
    fi
fi
[ -n "${GM_BIN:-}" ] && [ -x "$GM_BIN" ] || { echo "FAIL: genesis-mesh binary not found (set GM_BIN)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed by the e2e helpers" >&2; exit 77; }

# ASan builds: leak reports go to the process's own log, a leak fails the exit code we check.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

E2E_TIMEOUT="${GM_E2E_TIMEOUT:-30}"
E2E_LOG_LEVEL="${E2E_LOG_LEVEL:-debug}"
E2E_TMP="$(mktemp -d "${TMPDIR:-/tmp}/gm-e2e.XXXXXX")"
chmod 700 "$E2E_TMP"
# The tests call python3 often (JSON checks): use Debian's interpreter directly when a version
# manager's shim (pyenv) comes first in PATH, since each shim call costs seconds on a busy machine.
if [ -x /usr/bin/python3 ] && [ "$(command -v python3)" != /usr/bin/python3 ]; then
    mkdir -p "$E2E_TMP/bin" && ln -s /usr/bin/python3 "$E2E_TMP/bin/python3" && PATH="$E2E_TMP/bin:$PATH"
fi
E2E_NET="$E2E_TMP/net"        # init --dir: root, NA and operator keys, genesis, NA database
E2E_NA_URL=""
E2E_NA_PID=""
E2E_NA_NS=""                  # network namespace of the NA ("" = the current one)
E2E_NA_LISTEN="127.0.0.1:0"
E2E_NA_SCHEME=http            # https once e2e_na_start found the certificate init made
E2E_NETWORK="${E2E_NETWORK:-E2ENET}"
E2E_FAILED=0
E2E_STEP=""
declare -a E2E_PIDS=()        # every background process we started
declare -a E2E_CLEANUP=()     # extra commands run on exit (after processes are stopped)
declare -A NODE_PID=()        # name -> pid of its running `node start`
declare -A NODE_NS=()         # name -> network namespace it runs in ("" = current)
declare -A NODE_LISTEN=()     # name -> --listen value
declare -A NODE_HOST=()       # name -> host others dial to reach it

log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
step() { E2E_STEP="$*"; log "== $*"; }

# Dump what helps to understand a failure: logs of the NA and of every node.
e2e_dump_logs() {
    local f
    for f in "$E2E_NET"/na.log "$E2E_TMP"/*/node.log "$E2E_TMP"/*/node.*.log; do
        [ -f "$f" ] || continue
        echo "----- tail of $f" >&2
        tail -n 40 "$f" >&2 || true
    done
}

fail() {
    E2E_FAILED=1
    echo "FAIL: ${E2E_STEP:+[$E2E_STEP] }$*" >&2
    e2e_dump_logs
    exit 1
}

# check "what must hold" command args...: like an assertion, but the test goes on; the
# failure is reported and fails the test at e2e_finish (for contract checks that should not
# hide the rest of the run).
declare -a E2E_SOFT_FAILS=()
check() {
    local what="$1"; shift
    if ! "$@" >/dev/null 2>&1; then
        echo "CHECK FAILED: ${E2E_STEP:+[$E2E_STEP] }$what" >&2
        E2E_SOFT_FAILS+=("${E2E_STEP:+[$E2E_STEP] }$what")
    fi
}
e2e_finish() {
    if [ "${#E2E_SOFT_FAILS[@]}" -gt 0 ]; then
        E2E_STEP=""
        fail "$(printf '%s; ' "${E2E_SOFT_FAILS[@]}")"
    fi
    log "PASS"
}

# ns_prefix NS: sets the array NSP to the command prefix running in NS (empty for "").
# Background processes must be started as "${NSP[@]}" cmd ... & (not through a function,
# which would put a bash subshell between $! and the process we want to signal).
ns_prefix() { NSP=(); [ -z "$1" ] || NSP=(ip netns exec "$1"); }

# Run a command in a namespace ("" = here).
in_ns() {
    local ns="$1"; shift
    if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

gm() { "$GM_BIN" "$@"; }

_e2e_stop_pid() {
    local pid="$1" i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

e2e_cleanup() {
    local rc=$? pid c
    set +e
    [ "$rc" -ne 0 ] && [ "$E2E_FAILED" -eq 0 ] && [ "$rc" -ne 77 ] && {
        echo "FAIL: ${E2E_STEP:+[$E2E_STEP] }exited with status $rc" >&2
        e2e_dump_logs
    }
    for pid in "${E2E_PIDS[@]}"; do _e2e_stop_pid "$pid"; done
    for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    for c in "${E2E_CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1; done
    if [ "${GM_E2E_KEEP:-0}" = 1 ]; then
        echo "kept $E2E_TMP" >&2
    else
        rm -rf "$E2E_TMP"
    fi
    exit "$rc"
}
trap e2e_cleanup EXIT
trap 'exit 130' INT TERM

# wait_until SECONDS "what we wait for" command args...: polls the command (every 0.1 s)
# until it succeeds; fails the test when the bound is reached. The bound is a failure
# limit, never part of what is tested.
wait_until() {
    local limit="$1" what="$2"; shift 2
    local deadline=$(( $(date +%s) + limit ))
    while :; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        [ "$(date +%s)" -ge "$deadline" ] && fail "timed out after ${limit}s waiting until: $what"
        sleep 0.1
    done
}

# json_q EXPR [ARG...] < json: evaluates the Python expression EXPR over the parsed document
# d (a[0], a[1], ... are the extra arguments). Strings print raw, booleans as true/false,
# None as null, everything else as JSON. Exit 1 if the input is not JSON or EXPR raises.
# EXPR may be several lines: statements, then a final expression (its value is the result).
_E2E_PY_EVAL='
import ast, json, sys
def run_expr(code, env):
    try:
        tree = ast.parse(code.strip(), mode="exec")
    except SyntaxError:  # one expression over several lines
        tree = ast.parse("(" + code.strip() + ")", mode="exec")
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<expr>", "exec"), env)
    return eval(compile(ast.Expression(last.value), "<expr>", "eval"), env) if last else None
'
json_q() {
    python3 -c "$_E2E_PY_EVAL"'
try:
    d = json.load(sys.stdin)
    a = sys.argv[2:]
    v = run_expr(sys.argv[1], {"d": d, "a": a, "__builtins__": __builtins__})
except Exception as e:
    sys.stderr.write("json_q: %s\n" % e)
    sys.exit(1)
if isinstance(v, str): print(v)
elif isinstance(v, bool): print("true" if v else "false")
elif v is None: print("null")
else: print(json.dumps(v))
' "$@"
}

# json_ok EXPR [ARG...] < json: succeeds iff EXPR is truthy.
json_ok() {
    python3 -c "$_E2E_PY_EVAL"'
try:
    d = json.load(sys.stdin)
    a = sys.argv[2:]
    ok = run_expr(sys.argv[1], {"d": d, "a": a, "__builtins__": __builtins__})
except Exception as e:
    sys.stderr.write("json_ok: %s\n" % e)
    sys.exit(1)
sys.exit(0 if ok else 1)
' "$@"
}

# Key files: comment lines, then one base64 line.
key_of_file() { grep -v '^#' "$1" | tr -d '[:space:]'; }

# ---------------------------------------------------------------- the NA

# e2e_na_start [extra na start args...]: init a network in $E2E_NET and start its NA.
# E2E_NA_CONFIG (a JSON object, optional) is merged into the NA's config.json before it starts;
# E2E_INIT_ARGS (optional) are more `init` options (e.g. "--na-validity 4m --force").
e2e_na_start() {
    local port_file="$E2E_NET.port" port host
    # shellcheck disable=SC2086 # E2E_INIT_ARGS: extra init options, split on spaces
    gm init --dir "$E2E_NET" --network "$E2E_NETWORK" ${E2E_INIT_ARGS:-} >"$E2E_TMP/init.out" 2>&1 ||
        fail "genesis-mesh init failed: $(cat "$E2E_TMP/init.out")"
    if [ -n "${E2E_NA_CONFIG:-}" ]; then
        python3 -c 'import json, sys
c = json.load(open(sys.argv[1])); c.update(json.loads(sys.argv[2]))
json.dump(c, open(sys.argv[1], "w"), indent=2)' "$E2E_NET/config.json" "$E2E_NA_CONFIG" ||
            fail "E2E_NA_CONFIG is not a JSON object: $E2E_NA_CONFIG"
    fi
    ns_prefix "$E2E_NA_NS"
    "${NSP[@]}" "$GM_BIN" na start --dir "$E2E_NET" --listen "$E2E_NA_LISTEN" \
        --port-file "$port_file" "$@" >"$E2E_NET/na.log" 2>&1 &
    E2E_NA_PID=$!
    E2E_PIDS+=("$E2E_NA_PID")
    wait_until "$E2E_TIMEOUT" "the NA wrote its port file" test -s "$port_file"
    kill -0 "$E2E_NA_PID" 2>/dev/null || fail "the NA exited: $(tail -5 "$E2E_NET/na.log")"
    port="$(tr -d '[:space:]' <"$port_file")"
    host="${E2E_NA_LISTEN%:*}"
    [ "$host" = "0.0.0.0" ] && host=127.0.0.1
    # HTTPS with the certificate init made; nodes join with its key pin (GM_NA_PIN), which
    # holds whatever address they dial (namespaces), and keep it in their directories.
    E2E_NA_SCHEME=http
    if [ -f "$E2E_NET/tls.crt" ]; then
        E2E_NA_SCHEME=https
        GM_NA_PIN="$(grep -o 'sha256//[A-Za-z0-9+/=]*' "$E2E_TMP/init.out" | head -n 1)"
        [ -n "$GM_NA_PIN" ] || fail "init printed no TLS key pin: $(cat "$E2E_TMP/init.out")"
        export GM_NA_PIN
    fi
    E2E_NA_URL="$E2E_NA_SCHEME://$host:$port"
    wait_until "$E2E_TIMEOUT" "the NA answers /crl" e2e_na_crl_sequence
    log "NA at $E2E_NA_URL (pid $E2E_NA_PID)"
}

e2e_na_stop() {
    [ -n "$E2E_NA_PID" ] || return 0
    _e2e_stop_pid "$E2E_NA_PID"
    wait "$E2E_NA_PID" 2>/dev/null || true
    E2E_NA_PID=""
}

# Operator commands against our NA (run where the NA is reachable at $E2E_NA_URL).
e2e_admin() { in_ns "$E2E_NA_NS" "$GM_BIN" admin "$@" --dir "$E2E_NET" --na "$E2E_NA_URL"; }

# Prints the sequence of the CRL the NA serves.
e2e_na_crl_sequence() {
    in_ns "$E2E_NA_NS" python3 - "$E2E_NA_URL" "$E2E_NET/tls.crt" <<'EOF'
import json, ssl, sys, urllib.request
ctx = None
if sys.argv[1].startswith("https:"):
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    ctx.check_hostname = False  # the NA may be dialled at a namespace address; the chain is checked
with urllib.request.urlopen(sys.argv[1] + "/crl", timeout=5, context=ctx) as r:
    print(json.load(r)["sequence"])
EOF
}

# e2e_invite ROLE: prints a fresh invite token for ROLE.
e2e_invite() {
    local out
    out="$(e2e_admin invite --role "$1" --json 2>"$E2E_TMP/invite.err")" ||
        fail "admin invite --role $1 failed: $(cat "$E2E_TMP/invite.err")"
    printf '%s' "$out" | json_q 'd.get("token") or d.get("invite_token")' ||
        fail "admin invite --json printed no token: $out"
}

# ---------------------------------------------------------------- nodes

node_dir() { printf '%s/%s' "$E2E_TMP" "$1"; }
node_key() { key_of_file "$(node_dir "$1")/node.pub"; }
node_cert_id() { json_q 'd["cert_id"]' <"$(node_dir "$1")/cert.json"; }
node_port() { tr -d '[:space:]' <"$(node_dir "$1")/port"; }
node_addr() { printf '%s:%s' "${NODE_HOST[$1]:-127.0.0.1}" "$(node_port "$1")"; }

# e2e_node_join NAME ROLE [NA_URL]: invite + join into $E2E_TMP/NAME (the node's namespace,
# if set with NODE_NS[NAME], is where join runs; NA_URL defaults to $E2E_NA_URL).
e2e_node_join() {
    local name="$1" role="$2" url="${3:-$E2E_NA_URL}" token
    token="$(e2e_invite "$role")"
    in_ns "${NODE_NS[$name]:-}" "$GM_BIN" join --na "$url" --token "$token" --dir "$(node_dir "$name")" \
        >"$E2E_TMP/join-$name.out" 2>&1 || fail "join of $name failed: $(cat "$E2E_TMP/join-$name.out")"
}

# e2e_node_start NAME [node start args...]: starts the node in the background; returns once
# it wrote its port file and its local API answers. Listens on NODE_LISTEN[NAME] (default
# 127.0.0.1:0), logs to D/node.log at $E2E_LOG_LEVEL (debug).
e2e_node_start() {
    local name="$1"; shift
    local d; d="$(node_dir "$name")"
    rm -f "$d/port"
    ns_prefix "${NODE_NS[$name]:-}"
    "${NSP[@]}" "$GM_BIN" node start --dir "$d" --listen "${NODE_LISTEN[$name]:-127.0.0.1:0}" \
        --port-file "$d/port" --log "$d/node.log" --log-level "$E2E_LOG_LEVEL" "$@" >>"$d/node.out" 2>&1 &
    NODE_PID[$name]=$!
    E2E_PIDS+=("${NODE_PID[$name]}")
    wait_until "$E2E_TIMEOUT" "$name wrote its port file" _node_started_or_dead "$name"
    kill -0 "${NODE_PID[$name]}" 2>/dev/null || fail "node $name exited at start: $(tail -5 "$d/node.out")"
    wait_until "$E2E_TIMEOUT" "$name answers status" node_running "$name"
}
_node_started_or_dead() { test -s "$(node_dir "$1")/port" || ! kill -0 "${NODE_PID[$1]}" 2>/dev/null; }

# e2e_node_start_expect_fail NAME REASON_ERE [args...]: starts the node in the foreground and
# succeeds iff it refuses by itself (within the bound): exit status 1 (not a crash, a
# sanitizer abort or a usage error), a message matching REASON_ERE (grep -E -i), and no
# sanitizer report. Its output is in D/refused.out; what went wrong is in D/refused.why.
e2e_node_start_expect_fail() {
    local name="$1" reason="$2"; shift 2
    local d rc=0; d="$(node_dir "$name")"
    in_ns "${NODE_NS[$name]:-}" timeout "$E2E_TIMEOUT" "$GM_BIN" node start --dir "$d" --listen 127.0.0.1:0 \
        --port-file "$d/port.refused" "$@" >"$d/refused.out" 2>&1 || rc=$?
    if [ "$rc" -ne 1 ]; then
        echo "exit status $rc (want 1)" >"$d/refused.why"; return 1
    elif grep -qE 'ERROR: (Addressa|Leak|Undefined)Sanitizer|runtime error:' "$d/refused.out"; then
        echo "sanitizer report" >"$d/refused.why"; return 1
    elif ! grep -qiE "$reason" "$d/refused.out"; then
        echo "no message matching /$reason/" >"$d/refused.why"; return 1
    fi
    : >"$d/refused.why"
}

# e2e_node_stop NAME: SIGTERM, wait; prints nothing, returns the node's exit status.
e2e_node_stop() {
    local name="$1" pid="${NODE_PID[$1]:-}" rc=0
    [ -n "$pid" ] || return 0
    _e2e_stop_pid "$pid"
    wait "$pid" 2>/dev/null || rc=$?
    NODE_PID[$name]=""
    return "$rc"
}

# A node that exited but was not waited for yet (a zombie) is not alive.
_pid_running() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
node_alive() { [ -n "${NODE_PID[$1]:-}" ] && _pid_running "${NODE_PID[$1]}"; }
# node_exited NAME: the node we started has exited by itself (collect its status with e2e_node_stop).
node_exited() { [ -n "${NODE_PID[$1]:-}" ] && ! _pid_running "${NODE_PID[$1]}"; }

# node_api NAME REQUEST_JSON: one request to the node's local API (D/node.sock); prints the
# response line. Fails if nothing answers.
node_api() {
    python3 - "$(node_dir "$1")/node.sock" "$2" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as e:
    sys.stderr.write("node_api: %s: %s\n" % (sys.argv[1], e))
    sys.exit(1)
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    c = s.recv(1 << 20)
    if not c:
        break
    buf += c
sys.stdout.write(buf.decode())
EOF
}

# The status object of a node as the contract (docs/node-cli.md) defines it: from the local
# API while the node runs, else {"running": false}. `status --json` itself is checked
# against the same contract by e2e_node_mesh.sh (status_cli_matches_contract).
node_status() {
    node_api "$1" '{"op":"status"}' 2>/dev/null || echo '{"running": false, "peers": [], "routes": []}'
}
node_running() { node_status "$1" | json_ok 'd.get("running") is True'; }
# `genesis-mesh status --dir D --json` (the CLI), raw.
node_status_cli() { in_ns "${NODE_NS[$1]:-}" "$GM_BIN" status --dir "$(node_dir "$1")" --json; }
# The CLI's status --json has the members of the contract (running or not).
status_cli_matches_contract() {
    node_status_cli "$1" | json_ok '
all(k in d for k in ("node_public_key", "network", "roles", "cert_id", "expires_at", "running", "crl_sequence"))
and isinstance(d["running"], bool) and (not d["running"] or all(k in d for k in ("peers", "routes", "metrics")))'
}

# node_q NAME EXPR [ARG...]: json_q over the node's status.
node_q() { local n="$1"; shift; node_status "$n" | json_q "$@"; }
node_ok() { local n="$1"; shift; node_status "$n" | json_ok "$@"; }

node_crl_seq() { node_q "$1" 'd.get("crl_sequence")'; }
node_crl_seq_at_least() { node_ok "$1" '(d.get("crl_sequence") or 0) >= int(a[0])' "$2"; }

# Peers / routes predicates (keys are base64 node public keys).
has_peer() { node_ok "$1" 'any(p["node_public_key"] == a[0] for p in d.get("peers", []))' "$2"; }
no_peer() { node_ok "$1" 'all(p["node_public_key"] != a[0] for p in d.get("peers", []))' "$2"; }
peer_count() { node_q "$1" 'len(d.get("peers", []))'; }
peer_count_is() { node_ok "$1" 'len(d.get("peers", [])) == int(a[0])' "$2"; }
# has_route NAME DEST [NEXT_HOP [METRIC]]: a reachable route (metric < 0xFFFF) to DEST.
has_route() {
    node_ok "$1" '
any(r["destination"] == a[0] and r["metric"] < 65535
    and (len(a) < 2 or r["next_hop"] == a[1])
    and (len(a) < 3 or r["metric"] == int(a[2])) for r in d.get("routes", []))' "${@:2}"
}
no_route() {
    node_ok "$1" 'all(r["destination"] != a[0] or r["metric"] >= 65535 for r in d.get("routes", []))' "$2"
}

# node_metric NAME NAME_REGEX: sum of the counters whose name matches (re.search).
node_metric() {
    node_q "$1" 'sum(v for k, v in d.get("metrics", {}).items() if __import__("re").search(a[0], k) and isinstance(v, (int, float)))' "$2"
}
metric_above() { [ "$(node_metric "$1" "$2")" -gt "$3" ]; }
# Counters of refused handshakes (all reasons).
REFUSED_RE='^handshakes?_refused'

# ---------------------------------------------------------------- messages

# e2e_recv_start NAME PORT COUNT OUT: a background `recv --json` of COUNT messages into OUT.
e2e_recv_start() {
    local name="$1" port="$2" count="$3" out="$4"
    : >"$out"
    ns_prefix "${NODE_NS[$name]:-}"
    "${NSP[@]}" "$GM_BIN" recv --dir "$(node_dir "$name")" --port "$port" --count "$count" \
        --timeout-ms $((E2E_TIMEOUT * 1000 * 2)) --json >"$out" 2>"$out.err" &
    E2E_PIDS+=("$!")
    echo $! >"$out.pid"
}

# e2e_send FROM TO_NAME PORT TEXT: one send; fails the test unless the node accepted it.
e2e_send() {
    in_ns "${NODE_NS[$1]:-}" "$GM_BIN" send --dir "$(node_dir "$1")" --to "$(node_key "$2")" --port "$3" "$4" \
        >"$E2E_TMP/send.out" 2>&1 || fail "send $1 -> $2 failed: $(cat "$E2E_TMP/send.out")"
}

_recv_has() { json_lines_has "$1" "$2" "$3"; }
# json_lines_has FILE FROM_KEY TEXT: a line of recv --json output from FROM_KEY with TEXT.
json_lines_has() {
    python3 - "$@" <<'EOF'
import base64, json, sys
path, frm, text = sys.argv[1:4]
for line in open(path):
    line = line.strip()
    if not line:
        continue
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("from") == frm and base64.b64decode(m.get("data", "")).decode("utf-8", "replace") == text:
        sys.exit(0)
sys.exit(1)
EOF
}

# e2e_message FROM TO PORT TEXT: delivers TEXT from FROM to TO and checks what TO received
# (sender key, port and bytes). The receiver subscribes first; until it reports the message
# the sender resends (once a second) so a subscription racing the first send cannot fail
# the test; TO's inbox also keeps messages sent before it subscribed.
e2e_message() {
    local from="$1" to="$2" port="$3" text="$4" out i
    out="$E2E_TMP/recv-$to-$port-$RANDOM.json"
    e2e_recv_start "$to" "$port" 1 "$out"
    local deadline=$(( $(date +%s) + E2E_TIMEOUT ))
    while :; do
        e2e_send "$from" "$to" "$port" "$text"
        for i in $(seq 1 10); do
            _recv_has "$out" "$(node_key "$from")" "$text" && break 2
            sleep 0.1
        done
        [ "$(date +%s)" -ge "$deadline" ] && fail "$to never received '$text' from $from on port $port (recv: $(cat "$out" "$out.err"))"
    done
    json_ok 'd["port"] == a[0]' "$port" < <(head -1 "$out") || fail "message to $to arrived on the wrong port: $(cat "$out")"
    log "delivered $from -> $to [$port]"
}

# e2e_send_expect_no_route FROM TO: send must fail with "no route".
e2e_send_expect_no_route() {
    local rc=0
    in_ns "${NODE_NS[$1]:-}" "$GM_BIN" send --dir "$(node_dir "$1")" --to "$(node_key "$2")" --port test "x" \
        >"$E2E_TMP/send.out" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] && grep -qi "no route" "$E2E_TMP/send.out"
}

# e2e_na_crl_q EXPR [ARG...]: json_q over the CRL the NA serves now.
e2e_na_crl_q() {
    in_ns "$E2E_NA_NS" python3 -c 'import ssl, sys, urllib.request
ctx = None
if sys.argv[1].startswith("https:"):
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    ctx.check_hostname = False
sys.stdout.write(urllib.request.urlopen(sys.argv[1] + "/crl", timeout=5, context=ctx).read().decode())' \
        "$E2E_NA_URL" "$E2E_NET/tls.crt" | json_q "$@"
}
# e2e_na_crl_revokes CERT_ID REASON: the NA's CRL lists CERT_ID with REASON.
e2e_na_crl_revokes() {
    e2e_na_crl_q 'any(r["certificate_id"] == a[0] and r["reason"] == a[1] for r in d["revoked_certificates"])' "$1" "$2" |
        grep -qx true
}
