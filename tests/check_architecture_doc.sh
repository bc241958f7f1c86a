#!/usr/bin/env bash
# docs/architecture.md must describe every folder and source file: each file below the code folders
# must be named there (as `path` or, inside its folder's table, as `name`), and each folder must have
# a heading or a row. Fails listing what is missing.
set -euo pipefail
src="${GM_SOURCE:-$(cd "$(dirname "$0")/.." && pwd)}"
doc="$src/docs/architecture.md"
[ -f "$doc" ] || { echo "FAIL: $doc is missing" >&2; exit 1; }
missing=()
while IFS= read -r f; do
    rel="${f#"$src"/}"
    base="$(basename "$rel")"
    grep -qF "\`$rel\`" "$doc" || grep -qF "\`$base\`" "$doc" || missing+=("$rel")
done < <(find "$src/lib" "$src/include" "$src/src" "$src/tools" "$src/agents" "$src/tests" "$src/fuzz" \
              "$src/bench" "$src/scripts" "$src/sdk" "$src/cmake" "$src/packaging" -maxdepth 3 -type f \
              \( -name '*.c' -o -name '*.h' -o -name '*.sh' -o -name '*.py' -o -name '*.js' -o -name '*.ts' \
                 -o -name '*.mjs' -o -name 'CMakeLists.txt' -o -name '*.in' -o -name '*.txt' \) \
              -not -path '*/corpus/*' -not -path '*/node_modules/*' -not -path '*/vectors/*' \
              -not -path '*/__pycache__/*' 2>/dev/null | sort)
while IFS= read -r d; do
    rel="${d#"$src"/}"
    grep -qF "\`$rel/\`" "$doc" || missing+=("$rel/ (folder)")
done < <(find "$src/lib" "$src/include" "$src/src" "$src/tools" "$src/agents" "$src/tests" "$src/fuzz" \
              "$src/bench" "$src/scripts" "$src/sdk" "$src/cmake" "$src/packaging" -maxdepth 2 -type d \
              -not -path '*/corpus*' -not -path '*/vectors/*' \
              -not -path '*/node_modules*' -not -path '*/__pycache__*' 2>/dev/null | sort)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "FAIL: docs/architecture.md does not describe ${#missing[@]} file(s)/folder(s):" >&2
    printf '  %s\n' "${missing[@]}" >&2
    exit 1
fi
echo "architecture.md names every folder and source file"
echo "1 passed, 0 failed"
