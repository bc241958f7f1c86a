#!/usr/bin/env bash
# Mutation check: are the seed rules really guarded by tests? Applies each one-line mutation
# of scripts/mutations.txt alone, rebuilds the test build (build-asan/), runs the tests the
# line names, restores the source, and prints a table  mutation | rule | caught.
# A mutation whose original text is no longer in the source is reported NOT APPLIED (update
# the list); one whose tests still pass is a gap in the tests. Slow (a rebuild per mutation):
# not part of CI; see "Developing" in README.md.
#
# Usage: scripts/mutate.sh [-l LIST] [-k] [PATTERN]
#   -l LIST   mutation list (default scripts/mutations.txt)
#   -k        keep going after a NOT APPLIED line without failing the exit status
#   PATTERN   only mutations whose line matches PATTERN (grep -E)
# Exit status: 0 when every mutation was applied and caught, 1 otherwise, 2 on usage errors.
# Environment: GM_MUTATE_BUILD (build dir, default build-asan), GM_MUTATE_JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
LIST="$ROOT/scripts/mutations.txt"
STRICT=1
while getopts "l:kh" o; do
    case "$o" in
    l) LIST="$OPTARG" ;;
    k) STRICT=0 ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
FILTER="${1:-}"
BUILD="${GM_MUTATE_BUILD:-build-asan}"
JOBS="${GM_MUTATE_JOBS:-2}"
command -v python3 >/dev/null || { echo "mutate.sh: python3 is needed" >&2; exit 2; }
[ -f "$LIST" ] || { echo "mutate.sh: no mutation list $LIST" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gm-mutate.XXXXXX")"
MUTATED=""   # the source file changed right now; restored on any exit, Ctrl-C included

restore() {
    if [ -n "$MUTATED" ] && [ -f "$WORK/original" ]; then
        cp -p "$WORK/original" "$ROOT/$MUTATED"
        touch "$ROOT/$MUTATED"   # newer than the mutated objects: the next build recompiles it
        echo "mutate.sh: restored $MUTATED" >&2
        MUTATED=""
    fi
}
on_exit() {
    local rc=$?
    restore
    rm -rf "$WORK"
    exit "$rc"
}
trap on_exit EXIT
trap 'echo "mutate.sh: interrupted" >&2; exit 130' INT TERM HUP

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    echo "mutate.sh: configuring $BUILD (asan)" >&2
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DGM_SANITIZE=ON -DGM_WERROR=ON >/dev/null
fi

# apply FILE ORIGINAL REPLACEMENT: edits FILE in place; prints why and fails when the
# original does not match exactly once.
apply() {
    python3 - "$@" <<'EOF'
import re, sys
path, orig, repl = sys.argv[1:4]
text = open(path, encoding="utf-8").read()
if orig.startswith("re:"):
    rx = re.compile(orig[3:], re.M)
    hits = list(rx.finditer(text))
    if len(hits) != 1:
        sys.exit("pattern matches %d times (want 1)" % len(hits))
    new = text[:hits[0].start()] + hits[0].expand(repl) + text[hits[0].end():]
else:
    lines = text.split("\n")
    idx = [i for i, l in enumerate(lines) if l.strip() == orig.strip()]
    if len(idx) != 1:
        sys.exit("line found %d times (want 1)" % len(idx))
    i = idx[0]
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    lines[i] = indent + repl.strip()
    new = "\n".join(lines)
if new == text:
    sys.exit("the replacement changes nothing")
open(path, "w", encoding="utf-8").write(new)
EOF
}

# split_line LINE: the five fields into F[0..4] (" | " separates, " \| " is a literal " | ").
split_line() {
    mapfile -t F < <(python3 -c '
import sys
parts = [p.replace("\x00", " | ").strip() for p in sys.argv[1].replace(" \\| ", "\x00").split(" | ")]
print("\n".join(parts))' "$1")
}

# Baseline: every test the selected lines name must pass on the tree as it is, or a failure
# under a mutation would prove nothing (a broken test "catches" everything).
all_tests=""
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*) continue ;; esac
    [ -z "$FILTER" ] || printf '%s\n' "$line" | grep -qE -- "$FILTER" || continue
    split_line "$line"
    [ "${#F[@]}" -eq 5 ] && all_tests="$all_tests ${F[4]}"
done <"$LIST"
all_tests="$(tr ' ' '\n' <<<"$all_tests" | sed '/^$/d' | sort -u | tr '\n' ' ')"
echo "==> baseline: building and running the unmutated tree's tests: $all_tests" >&2
# Everything, once: end-to-end tests also run the agents and tools (gm-mock-llm, ...), which a
# fresh build directory would otherwise lack.
nice -n 10 cmake --build "$BUILD" -j"$JOBS" >"$WORK/baseline.log" 2>&1 ||
    { tail -20 "$WORK/baseline.log" >&2; echo "mutate.sh: the unmutated tree does not build" >&2; exit 1; }
if ! (cd "$BUILD" && ctest -R "^($(echo $all_tests | tr ' ' '|'))\$" --output-on-failure >>"$WORK/baseline.log" 2>&1); then
    grep -E "^[[:space:]]*[0-9]+ - " "$WORK/baseline.log" >&2
    echo "mutate.sh: these tests fail WITHOUT any mutation: fix them first (nothing was mutated)" >&2
    exit 1
fi

declare -a ROWS=()
total=0; caught=0; missed=0; notapplied=0
n=0
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*) continue ;; esac
    [ -z "$FILTER" ] || printf '%s\n' "$line" | grep -qE -- "$FILTER" || continue
    n=$((n + 1))
    split_line "$line"
    if [ "${#F[@]}" -ne 5 ]; then
        echo "mutate.sh: $LIST: malformed line (want 5 fields): $line" >&2
        exit 2
    fi
    file="${F[0]}" orig="${F[1]}" repl="${F[2]}" rule="${F[3]}" tests="${F[4]}"
    total=$((total + 1))
    name="#$n $file: ${orig:0:60}"
    echo "==> [$n] $rule ($file)" >&2
    if [ ! -f "$ROOT/$file" ]; then
        why="no such file"
    else
        cp -p "$ROOT/$file" "$WORK/original"
        MUTATED="$file"
        why="$(apply "$ROOT/$file" "$orig" "$repl" 2>&1)" && why=""
    fi
    if [ -n "$why" ]; then
        restore
        echo "!!!!!! NOT APPLIED: [$n] $file: $why" >&2
        echo "!!!!!! the source moved on: update this line of $LIST" >&2
        ROWS+=("$name"$'\x1f'"$rule"$'\x1f'"NOT APPLIED ($why)")
        notapplied=$((notapplied + 1))
        continue
    fi
    log="$WORK/mutation-$n.log"
    targets=(genesis-mesh)
    for t in $tests; do [[ "$t" == test_* || "$t" == fuzz_* ]] && targets+=("${t%_pg}"); done
    verdict=""
    if ! nice -n 10 cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}" >"$log" 2>&1; then
        verdict="no (does not build: fix the mutation)"
    else
        regex="^($(echo "$tests" | tr ' ' '|'))\$"
        if (cd "$BUILD" && ctest -R "$regex" --output-on-failure >>"$log" 2>&1); then
            verdict="NO - survived"
        elif grep -q "No tests were found" "$log"; then
            verdict="no (no test named $tests)"
        else
            failed="$(sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) (.*/\1/p' "$log" | tr '\n' ' ')"
            verdict="yes (${failed% })"
        fi
    fi
    restore
    case "$verdict" in
    yes*) caught=$((caught + 1)) ;;
    *) missed=$((missed + 1)); cp "$log" "${TMPDIR:-/tmp}/gm-mutate-$n.log"
       echo "mutate.sh: [$n] $verdict; log kept in ${TMPDIR:-/tmp}/gm-mutate-$n.log" >&2 ;;
    esac
    ROWS+=("$name"$'\x1f'"$rule"$'\x1f'"$verdict")
done <"$LIST"

echo "==> rebuilding the restored tree" >&2
nice -n 10 cmake --build "$BUILD" -j"$JOBS" >/dev/null 2>&1 || echo "mutate.sh: the restored tree does not build!" >&2

echo
printf '%s\n' "mutation | rule | caught" "--- | --- | ---"
for r in "${ROWS[@]}"; do
    IFS=$'\x1f' read -r a b c <<<"$r"
    printf '%s | %s | %s\n' "${a//|/\\|}" "$b" "$c"
done
echo
echo "$total mutations: $caught caught, $missed not caught, $notapplied NOT APPLIED"
[ "$notapplied" -gt 0 ] && echo "!!!!!! $notapplied mutation(s) NOT APPLIED: their lines in $LIST no longer match the source" >&2
[ "$missed" -eq 0 ] && { [ "$notapplied" -eq 0 ] || [ "$STRICT" -eq 0 ]; }
