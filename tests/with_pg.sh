#!/usr/bin/env bash
# Runs a test program against a real PostgreSQL server (tests/lib_pg.sh): starts one in a
# temporary directory, runs "$@" with GM_TEST_STORE set to its URL (the store and NA unit
# tests then keep their state there instead of in SQLite files, tests/store_testkit.h), and
# stops the server and removes the directory whatever the outcome. ctest runs the *_pg
# variants of test_store and test_na_* through it.
set -uo pipefail
. "$(dirname "$0")/lib_pg.sh"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/gm-pg.XXXXXX")"
cleanup() { gm_pg_stop; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
gm_pg_start "$tmp"
GM_TEST_STORE="$GM_PG_URL" "$@"
rc=$?
[ "$rc" -eq 0 ] || { echo "--- PostgreSQL server log ---" >&2; tail -n 40 "$GM_PG_DIR/server.log" >&2; }
exit "$rc"
