#!/usr/bin/env bash
# The library's API boundary: libgenesismesh.so exports only functions with the public prefix gm_
# that include/gm/ declares, include/gm/ declares only functions some program (src/, agents/, tools/,
# examples/, and bench/bench_pump.c, the streaming program on the public API only) uses, and the
# programs (genesis-mesh, tools, shipped agents) link to it, so they cannot
# call internals. Fails naming every symbol that leaks and every public function no program uses.
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
# every function (and object) include/gm/ declares is used by a program outside lib/ (src/,
# agents/, tools/, examples/): what only the library and its tests use belongs in a private header
# of its layer (lib/<layer>/*_internal.h), so the public API stays what programs need
strip_comments() { perl -0pe 's{/\*.*?\*/}{}gs; s{//[^\n]*}{}g'; }
public="$( (cat "$src"/include/gm/*.h | strip_comments | grep -oE 'gm_[A-Za-z0-9_]+[[:space:]]*\(' \
             | sed 's/[[:space:]]*($//'
            cat "$src"/include/gm/*.h | strip_comments | grep -E '^extern ' | grep -oE 'gm_[A-Za-z0-9_]+') | sort -u)"
used="$( (find "$src/src" "$src/agents" "$src/tools" "$src/examples" -type f \( -name '*.c' -o -name '*.h' \) \
            -exec cat {} + 2>/dev/null; cat "$src/bench/bench_pump.c") | strip_comments | grep -oE 'gm_[A-Za-z0-9_]+' | sort -u)"
unused="$(comm -23 <(printf '%s\n' "$public") <(printf '%s\n' "$used"))"
if [ -n "$unused" ]; then
    while IFS= read -r sym; do
        echo "FAIL: $sym is declared in include/gm/ but no program (src/, agents/, tools/, examples/, bench/bench_pump.c) uses it: move it to a private header" >&2
    done <<<"$unused"
    bad=1
fi
# the programs must take the library from the shared object (public API only)
for prog in "$build/genesis-mesh" "$build/gm-mock-llm" "$build"/gm-agent-*; do
    [ -x "$prog" ] || continue
    grep -q "libgenesismesh\.so" <<<"$(ldd "$prog")" || { echo "FAIL: $prog does not link libgenesismesh.so" >&2; bad=1; }
done
n="$(wc -l <<<"$exported")"
[ "$bad" -eq 0 ] || exit 1
echo "libgenesismesh.so exports $n symbols, all gm_, declared in include/gm/ and used by a program"
echo "1 passed, 0 failed"
