#!/usr/bin/env bash
# The library's API boundary: libgenesismesh.so exports only functions with the public prefix gm_
# that include/gm/ declares, and the programs (genesis-mesh, tools, shipped agents) link to it, so
# they cannot call internals. Fails naming every symbol that leaks.
set -euo pipefail
build="${GM_BUILD:?GM_BUILD must name the build directory}"
src="${GM_SOURCE:-$(cd "$(dirname "$0")/.." && pwd)}"
so="$build/libgenesismesh.so"
[ -f "$so" ] || { echo "FAIL: $so not built" >&2; exit 1; }
command -v nm >/dev/null || { echo "SKIP: nm (binutils) not installed" >&2; exit 77; }

exported="$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' | sed 's/@.*//' | sort -u)"
[ -n "$exported" ] || { echo "FAIL: $so exports nothing" >&2; exit 1; }
declared="$( (cat "$src"/include/gm/*.h | sed 's://.*$::' | grep -oE 'gm_[A-Za-z0-9_]+[[:space:]]*\(' \
              | sed 's/[[:space:]]*($//'
              cat "$src"/include/gm/*.h | grep -E '^extern ' | grep -oE 'gm_[A-Za-z0-9_]+') | sort -u)"
bad=0
while IFS= read -r sym; do
    case "$sym" in
        gm_*) grep -qx "$sym" <<<"$declared" || { echo "FAIL: $sym is exported but not declared in include/gm/" >&2; bad=1; } ;;
        *) echo "FAIL: $sym is exported without the public prefix gm_" >&2; bad=1 ;;
    esac
done <<<"$exported"
# the programs must take the library from the shared object (public API only)
for prog in "$build/genesis-mesh" "$build/gm-mock-llm"; do
    [ -x "$prog" ] || continue
    grep -q "libgenesismesh\.so" <<<"$(ldd "$prog")" || { echo "FAIL: $prog does not link libgenesismesh.so" >&2; bad=1; }
done
n="$(wc -l <<<"$exported")"
[ "$bad" -eq 0 ] || exit 1
echo "libgenesismesh.so exports $n symbols, all gm_ and declared in include/gm/"
echo "1 passed, 0 failed"
