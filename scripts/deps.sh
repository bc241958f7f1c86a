#!/usr/bin/env bash
# Installs the Debian packages genesis-mesh needs, only those that are missing.
# `deps.sh fuzz` also installs clang (libFuzzer) for scripts/fuzz.sh; the tests do not need it.
# The browser test (tests/e2e_console.sh) needs chromium, node and npm, and the npm packages of
# tests/js (package-lock.json), installed here with `npm ci`.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libsodium-dev libjansson-dev libsqlite3-dev libmicrohttpd-dev
      libcurl4-openssl-dev libgnutls28-dev libuv1-dev libcmocka-dev iproute2 python3 curl binutils systemd sqlite3
      chromium python3-pip python3-setuptools python3-wheel)
# node: Debian's nodejs, unless a node is already there (e.g. NodeSource's, which bundles npm).
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)

[ "${1:-}" = fuzz ] && pkgs+=(clang)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing missing packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The test suite's npm packages (exactly the locked versions; never a browser download):
# playwright-core (e2e_console), the MCP TypeScript SDK (e2e_mcp), a Prometheus text parser.
js="$(cd "$(dirname "$0")/.." && pwd)/tests/js"
if [ -f "$js/package-lock.json" ] && ! (cd "$js" && npm ls --omit=dev >/dev/null 2>&1); then
  echo "==> installing the npm packages of tests/js"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$js" --no-audit --no-fund >/dev/null
fi
