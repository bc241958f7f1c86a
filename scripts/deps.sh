#!/usr/bin/env bash
# Installs the Debian packages genesis-mesh needs, only those that are missing.
# `deps.sh fuzz` also installs clang (libFuzzer) for scripts/fuzz.sh; the tests do not need it.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libsodium-dev libjansson-dev libsqlite3-dev libmicrohttpd-dev
      libcurl4-openssl-dev libgnutls28-dev libuv1-dev libcmocka-dev iproute2 python3 curl binutils systemd sqlite3)

[ "${1:-}" = fuzz ] && pkgs+=(clang)
# node and npm for the JavaScript test dependencies below (kept when node came from elsewhere)
command -v node >/dev/null || pkgs+=(nodejs npm)
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

# JavaScript test dependencies (tests/js/package.json, locked by package-lock.json), when node
# and npm are there: e2e_metrics.sh parses the Prometheus expositions with an npm parser.
js_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/js"
if command -v npm >/dev/null && [ -f "$js_dir/package-lock.json" ]; then
  echo "==> npm ci in tests/js"
  (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
