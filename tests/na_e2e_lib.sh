# Helpers for the NA end-to-end tests (tests/e2e_na_*.sh; sourced, not run): a temp dir,
# `init`, the NA on a free loopback port (--listen 127.0.0.1:0 --port-file), raw HTTP with
# curl, over HTTPS with the certificate init made, JSON fields with grep/sed (the NA answers
# compact JSON), bounded polling, and a trap
# that kills every NA it started and removes the temp dir.
#
# Environment: GM_BIN (genesis-mesh), or GM_BUILD/genesis-mesh; GM_E2E_KEEP=1 keeps the dir.

set -euo pipefail

if [ -z "${GM_BIN:-}" ] && [ -n "${GM_BUILD:-}" ]; then GM_BIN="$GM_BUILD/genesis-mesh"; fi
[ -n "${GM_BIN:-}" ] && [ -x "$GM_BIN" ] || { echo "FAIL: genesis-mesh binary not found (set GM_BIN)" >&2; exit 1; }
command -v curl >/dev/null || { echo "SKIP: the curl command is needed" >&2; exit 77; }
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

T="$(mktemp -d "${TMPDIR:-/tmp}/gm-e2e-na.XXXXXX")"
OP="$T/op"            # init --dir: keys, genesis, config, na.db
NA_PID=""
NA_URL=""
PASSED=0
declare -a STARTED=()

cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "${GM_E2E_KEEP:-0}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$T"/na*.log; do [ -f "$f" ] && { echo "----- tail of $f" >&2; tail -n 30 "$f" >&2; }; done
    exit 1
}
pass() { PASSED=$((PASSED + 1)); echo "ok - $*"; }

gm() { "$GM_BIN" "$@"; }
admin() { "$GM_BIN" admin "$@" --dir "$OP" --na "$NA_URL"; }

# wait_until SECONDS DESC CMD...: poll (every 0.1 s) until CMD succeeds.
wait_until() {
    local limit="$1" desc="$2"; shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${limit}s waiting for: $desc"
        sleep 0.1
    done
}

# init makes the NA's TLS certificate: every client here trusts it as its CA (GM_NA_CA for
# genesis-mesh, --cacert for curl), so the tests run over HTTPS.
na_init() {
    gm init --dir "$OP" --network "${1:-E2ENA}" >"$T/init.out" 2>&1 || fail "init: $(cat "$T/init.out")"
    [ -f "$OP/tls.crt" ] && export GM_NA_CA="$OP/tls.crt"
    return 0
}
curl() {
    if [ -f "$OP/tls.crt" ]; then command curl --cacert "$OP/tls.crt" "$@"; else command curl "$@"; fi
}

# na_start [LOG]: start the NA of $OP on a free port; sets NA_PID and NA_URL.
na_start() {
    local log="${1:-$T/na.log}" port_file="$T/na.port"
    rm -f "$port_file"
    "$GM_BIN" na start --dir "$OP" --listen 127.0.0.1:0 --port-file "$port_file" >>"$log" 2>&1 &
    NA_PID=$!
    STARTED+=("$NA_PID")
    local deadline=$((SECONDS + 30))
    until [ -s "$port_file" ]; do
        kill -0 "$NA_PID" 2>/dev/null || fail "the NA exited: $(tail -n 5 "$log")"
        [ "$SECONDS" -lt "$deadline" ] || fail "the NA wrote no port file"
        sleep 0.05
    done
    local scheme=http
    grep -q '"tls_cert"' "$OP/config.json" && scheme=https
    NA_URL="$scheme://127.0.0.1:$(tr -d '[:space:]' <"$port_file")"
    wait_until 30 "the NA answers /health" curl -sf "$NA_URL/health"
}

# na_stop: SIGTERM and wait (clean shutdown must exit 0).
na_stop() {
    kill -TERM "$NA_PID"
    wait "$NA_PID" || fail "the NA exited with status $? on SIGTERM"
    NA_PID=""
}

# http METHOD PATH [BODY|@FILE] [curl args...]: sets STATUS; the body goes to $T/resp.
http() {
    local method="$1" path="$2"; shift 2
    local data=()
    if [ $# -gt 0 ]; then data=(--data-binary "$1" -H 'Content-Type: application/json'); shift; fi
    STATUS="$(curl -s -o "$T/resp" -w '%{http_code}' -X "$method" "${data[@]}" "$@" "$NA_URL$path")" || STATUS=000
}

# expect_status CODE ERROR_CODE DESC: the last http call answered CODE with that error code.
expect_error() {
    local code="$1" ecode="$2" desc="$3"
    [ "$STATUS" = "$code" ] || fail "$desc: HTTP $STATUS, expected $code: $(cat "$T/resp")"
    grep -q "\"code\":\"$ecode\"" "$T/resp" || fail "$desc: expected error code $ecode: $(cat "$T/resp")"
    grep -q '"request_id":"[0-9a-f-]\{36\}"' "$T/resp" || fail "$desc: no request_id in the error: $(cat "$T/resp")"
    pass "$desc -> $code $ecode"
}

# jstr KEY [FILE]: the first "KEY":"value" string in compact JSON.
jstr() { grep -o "\"$1\":\"[^\"]*\"" "${2:-$T/resp}" | head -n 1 | sed 's/^"[^"]*":"//; s/"$//'; }
# jnum KEY [FILE]: the first "KEY":number.
jnum() { grep -o "\"$1\":[0-9-]*" "${2:-$T/resp}" | head -n 1 | sed 's/^"[^"]*"://'; }

# crl_seq: sequence of the CRL the NA serves now.
crl_seq() { curl -sf "$NA_URL/crl" | grep -o '"sequence":[0-9]*' | sed 's/.*://'; }

# invite [invite args...]: prints a fresh token.
invite() { admin invite "$@" 2>/dev/null; }

# nodes_json: GET /admin/nodes as compact-enough JSON on stdout.
nodes_json() { admin nodes --json; }

# key_of DIR: the node public key in DIR/node.pub.
key_of() { grep -v '^#' "$1/node.pub" | tr -d '[:space:]'; }
# cert_field DIR KEY: a member of DIR/cert.json (pretty-printed: "key": "value").
cert_field() { grep -o "\"$2\": \"[^\"]*\"" "$1/cert.json" | head -n 1 | sed 's/^"[^"]*": "//; s/"$//'; }

# make_node_key DIR: a node key without joining (for hand-made requests).
make_node_key() {
    mkdir -p "$1"
    # `join` creates the key before talking to the NA; an unreachable URL leaves just the key.
    gm join --dir "$1" --na http://127.0.0.1:1 --token x >/dev/null 2>&1 || true
    [ -f "$1/node.key" ] || fail "no node key created in $1"
}

# signed_join DIR TOKEN [EXTRA_JSON_MEMBERS] [sign-request args...]: prints a signed /join body.
signed_join() {
    local dir="$1" token="$2" extra="${3:-}"; shift 3 || shift $#
    gm na sign-request --key "$dir/node" --body "{\"invite_token\":\"$token\"${extra:+,$extra}}" "$@"
}

finish() { echo "$PASSED passed, 0 failed"; }
