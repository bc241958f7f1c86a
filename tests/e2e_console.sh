#!/usr/bin/env bash
# The NA's operator console in a real browser: a real NA over HTTPS with enrolled nodes, an
# outstanding invite and a registered agent; headless Chromium (driven by playwright-core,
# tests/js/console_check.js) opens the URL `admin console-url` prints, trusting the NA's
# self-signed certificate by its key pin, checks the page, sees a revocation made with the CLI
# appear without a reload (gamma renewed: its first certificate superseded), and the state
# endpoint refuse a missing or wrong token. The
# screenshot goes to $GM_BUILD/console.png. Skips only when node or chromium is missing
# (scripts/deps.sh installs both).
. "$(dirname "$0")/lib_e2e.sh"
. "$(dirname "$0")/agents_e2e_lib.sh"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
JS="$SRC/tests/js"
CHROMIUM="${GM_CHROMIUM:-/usr/bin/chromium}"

command -v node >/dev/null || { echo "SKIP: node is not installed (scripts/deps.sh installs it)" >&2; exit 77; }
[ -x "$CHROMIUM" ] || { echo "SKIP: $CHROMIUM is not installed (scripts/deps.sh installs Debian's chromium)" >&2; exit 77; }
if [ ! -f "$JS/node_modules/playwright-core/package.json" ]; then
    # scripts/deps.sh runs the same; without the registry the test cannot drive the browser.
    npm ci --prefix "$JS" --no-audit --no-fund >"$E2E_TMP/npm.log" 2>&1 ||
        { echo "SKIP: playwright-core is not installed and npm ci failed (run scripts/deps.sh): $(tail -3 "$E2E_TMP/npm.log")" >&2; exit 77; }
fi

step "an NA over HTTPS, three nodes, an agent and an open invite"
e2e_na_start
[ "$E2E_NA_SCHEME" = https ] || fail "the NA does not serve HTTPS"
for n in alpha beta gamma; do e2e_node_join "$n" role:service:agent; done
e2e_node_start alpha
agent_start console-agent alpha repo.summary --fixture "$SRC/examples/repo-a.json"
INVITE="$(e2e_invite role:spare)"
gm join --renew --dir "$(node_dir gamma)" >"$E2E_TMP/renew.out" 2>&1 || fail "renewal of gamma: $(cat "$E2E_TMP/renew.out")"

step "console.token: made by init, 0600, and admin console-url prints the address with it"
[ "$(stat -c %a "$E2E_NET/console.token")" = 600 ] || fail "console.token has mode $(stat -c %a "$E2E_NET/console.token")"
URL="$(gm admin console-url --dir "$E2E_NET" --na "$E2E_NA_URL" 2>"$E2E_TMP/console-url.err")" ||
    fail "admin console-url: $(cat "$E2E_TMP/console-url.err")"
TOKEN="$(tr -d '[:space:]' <"$E2E_NET/console.token")"
[ "$URL" = "$E2E_NA_URL/console#token=$TOKEN" ] || fail "admin console-url printed '$URL'"
chmod 644 "$E2E_NET/console.token"
gm admin console-url --dir "$E2E_NET" --na "$E2E_NA_URL" >/dev/null 2>"$E2E_TMP/console-url.err" &&
    fail "admin console-url accepted a console.token others may read"
grep -q "chmod 600" "$E2E_TMP/console-url.err" || fail "no fix named: $(cat "$E2E_TMP/console-url.err")"
chmod 600 "$E2E_NET/console.token"

step "Chromium: the page, live revocation, token checks, screenshot"
SHOT="${GM_BUILD:-$E2E_TMP}/console.png"
rm -f "$SHOT"
VICTIM="$(node_key beta)"
NA_VALID_TO="$(json_q 'd["network_authority"]["valid_to"]' <"$E2E_NET/genesis.json")"
REVOKE_CMD="$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$GM_BIN" admin revoke --dir "$E2E_NET" \
    --na "$E2E_NA_URL" --node-key "$VICTIM" --reason key_compromise)"
NODES="$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$(node_key alpha)" "$VICTIM" "$(node_key gamma)")"
GM_CONSOLE_URL="$URL" GM_CONSOLE_PIN="$GM_NA_PIN" GM_CONSOLE_NETWORK="$E2E_NETWORK" GM_CONSOLE_NODES="$NODES" \
GM_CONSOLE_REVOKE_KEY="$VICTIM" GM_CONSOLE_REVOKE_CMD="$REVOKE_CMD" GM_CONSOLE_INVITE_TOKEN="$INVITE" \
GM_CONSOLE_INVITE_ROLE=role:spare GM_CONSOLE_AGENT_ID=console-agent GM_CONSOLE_AGENT_CAP=repo.summary \
GM_CONSOLE_NA_VALID_TO="$NA_VALID_TO" GM_CONSOLE_RENEWED_KEY="$(node_key gamma)" GM_CONSOLE_SCREENSHOT="$SHOT" GM_CONSOLE_TIMEOUT_S="$E2E_TIMEOUT" \
GM_CHROMIUM="$CHROMIUM" NODE_PATH="$JS/node_modules" TMPDIR="$E2E_TMP" \
    node "$JS/console_check.js" >"$E2E_TMP/browser.log" 2>&1 || fail "browser check: $(cat "$E2E_TMP/browser.log")"
cat "$E2E_TMP/browser.log" >&2
[ -s "$SHOT" ] || fail "no screenshot at $SHOT"

step "the token never reaches the NA's log"
grep -q "$TOKEN" "$E2E_NET/na.log" && fail "the console token is in the NA's log"
grep -q "/console/api/state -> 401" "$E2E_NET/na.log" || fail "the refused state requests are not logged"
e2e_finish
