# A real PostgreSQL server for a test (sourced, not run): initdb and pg_ctl in a temporary
# directory, listening only on a unix socket in that directory (no TCP port to collide with
# other tests), stopped by gm_pg_stop, which callers put in their EXIT trap so the server goes
# away even when the test fails. Debian's postgresql package (scripts/deps.sh) provides the
# binaries; without them the test is skipped (status 77) with a message saying so.
#
#   . "$(dirname "$0")/lib_pg.sh"
#   gm_pg_start "$dir"          # exports GM_PG_URL (postgresql:///postgres?host=...&port=...)
#   ...
#   gm_pg_stop                  # idempotent
#
# initdb refuses to run as root: as root the server runs as the unprivileged "postgres" user
# (created by the Debian package) through runuser, and the directory is made reachable by it.

GM_PG_DIR=""
GM_PG_PORT=""
GM_PG_URL=""

# The directory of initdb/pg_ctl: $GM_PG_BINDIR, PATH, or Debian's /usr/lib/postgresql/N/bin.
gm_pg_bindir() {
    if [ -n "${GM_PG_BINDIR:-}" ] && [ -x "$GM_PG_BINDIR/initdb" ]; then echo "$GM_PG_BINDIR"; return 0; fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"; return 0  # the real directory, where psql is too
    fi
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
    done
    return 1
}

# Run a command as the server's owner.
gm_pg_as() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# gm_pg_start DIR: a fresh server whose data and socket live under DIR (created if missing).
gm_pg_start() {
    local base="$1" bin i
    bin="$(gm_pg_bindir)" || { echo "SKIP: PostgreSQL server binaries (initdb, pg_ctl) not found; run scripts/deps.sh" >&2; exit 77; }
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "FAIL: running as root and there is no 'postgres' user to run the server (initdb refuses root); run scripts/deps.sh" >&2
        exit 1
    fi
    mkdir -p "$base"
    GM_PG_DIR="$(cd "$base" && pwd)/pg"
    mkdir -p "$GM_PG_DIR"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres "$GM_PG_DIR"
        # the server's user must be able to reach its directory through every parent
        local p="$GM_PG_DIR"
        while p="$(dirname "$p")"; [ "$p" != / ]; do
            runuser -u postgres -- test -x "$p" 2>/dev/null || chmod o+x "$p"
        done
    fi
    gm_pg_as "$bin/initdb" -D "$GM_PG_DIR/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$GM_PG_DIR/initdb.log" 2>&1 || { echo "FAIL: initdb failed:" >&2; cat "$GM_PG_DIR/initdb.log" >&2; exit 1; }
    # The port only names the socket file (.s.PGSQL.PORT) in our own directory: no TCP.
    GM_PG_PORT=$(( 20000 + RANDOM % 40000 ))
    for i in 1 2 3; do
        if gm_pg_as "$bin/pg_ctl" -D "$GM_PG_DIR/data" -l "$GM_PG_DIR/server.log" -w -t 120 \
            -o "-k $GM_PG_DIR -p $GM_PG_PORT -c listen_addresses='' -c max_connections=100 -c fsync=off" \
            start >/dev/null 2>&1; then
            GM_PG_URL="postgresql:///postgres?host=$GM_PG_DIR&port=$GM_PG_PORT&user=postgres"
            export GM_PG_URL GM_PG_DIR GM_PG_PORT
            GM_PG_BIN="$bin"
            return 0
        fi
        GM_PG_PORT=$(( 20000 + RANDOM % 40000 ))
    done
    echo "FAIL: the PostgreSQL server did not start:" >&2
    cat "$GM_PG_DIR/server.log" >&2
    exit 1
}

# Stop the server (fast shutdown: open connections are closed).
gm_pg_stop() {
    [ -n "$GM_PG_DIR" ] && [ -f "$GM_PG_DIR/data/postmaster.pid" ] || return 0
    gm_pg_as "$GM_PG_BIN/pg_ctl" -D "$GM_PG_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
        gm_pg_as "$GM_PG_BIN/pg_ctl" -D "$GM_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
}

# Start the stopped server again on the same socket (tests of "the database came back").
gm_pg_restart() {
    gm_pg_as "$GM_PG_BIN/pg_ctl" -D "$GM_PG_DIR/data" -l "$GM_PG_DIR/server.log" -w -t 120 \
        -o "-k $GM_PG_DIR -p $GM_PG_PORT -c listen_addresses='' -c max_connections=100 -c fsync=off" start >/dev/null
}

# gm_pg_psql SQL: run SQL on the test server (psql beside initdb).
gm_pg_psql() {
    "$GM_PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$GM_PG_URL" -c "$1"
}

# gm_pg_url_db NAME: the URL of database NAME on the test server.
gm_pg_url_db() { printf 'postgresql:///%s?host=%s&port=%s&user=postgres' "$1" "$GM_PG_DIR" "$GM_PG_PORT"; }
