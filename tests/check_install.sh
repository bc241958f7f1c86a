#!/usr/bin/env bash
# `cmake --install` into a DESTDIR: the layout an operator and a packager expect (programs, shared
# library, headers, pkg-config file, docs, systemd units), a program built against the installed
# headers and pkg-config file that runs, and `systemd-analyze verify` accepting every unit.
set -euo pipefail
build="${GM_BUILD:?GM_BUILD must name the build directory}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
dest="$tmp/root"
fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR="$dest" cmake --install "$build" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }
prefix="$(sed -n 's/^prefix=//p' "$build/genesis-mesh.pc")"
root="$dest$prefix"
libdir="$dest$(sed -n 's/^libdir=//p' "$build/genesis-mesh.pc")"
for f in bin/genesis-mesh bin/gm-mock-llm bin/gm-agent-repo bin/gm-agent-llm bin/gm-agent-planner \
         include/gm/error.h include/gm/keys.h \
         share/doc/genesis-mesh/operator-guide.md share/doc/genesis-mesh/README.md \
         lib/systemd/system/genesis-mesh-na.service lib/systemd/system/genesis-mesh-node@.service \
         lib/systemd/system/genesis-mesh-agent@.service; do
    [ -e "$root/$f" ] || fail "$prefix/$f was not installed"
done
[ -x "$root/bin/genesis-mesh" ] || fail "genesis-mesh is not executable"
ls "$libdir"/libgenesismesh.so.* >/dev/null 2>&1 || fail "libgenesismesh.so.N not installed in $libdir"
[ -f "$libdir/pkgconfig/genesis-mesh.pc" ] || fail "pkg-config file not installed"
# no private header may be installed
[ -z "$(find "$root/include" -name '*_internal.h')" ] || fail "a private header was installed"

# A user's program, built only from the installed headers and pkg-config file.
cat >"$tmp/use.c" <<'C'
#include <stdio.h>
#include <gm/keys.h>
#include <gm/util.h>
int main(void)
{
    gm_error err = {0};
    gm_signer k;
    if (gm_init(&err) != 0 || gm_signer_generate(&k, "k1", &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gm_signer_wipe(&k);
    puts("installed library works");
    return 0;
}
C
export PKG_CONFIG_PATH="$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest"
flags="$(pkg-config --cflags --libs genesis-mesh)" || fail "pkg-config cannot read genesis-mesh.pc"
san=""
case "$(nm -D "$libdir"/libgenesismesh.so)" in *__asan_*) san="-fsanitize=address,undefined" ;; esac
# shellcheck disable=SC2086
cc $san -o "$tmp/use" "$tmp/use.c" $flags || fail "cannot build a program against the installed library"
grep -q "installed library works" <<<"$(LD_LIBRARY_PATH="$libdir" "$tmp/use")" || fail "the program built on the installed library did not run"

# The units, checked by systemd against the installed tree. systemd-analyze needs the standard
# targets (sysinit.target, ...) inside the root it checks: take the host's.
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$dest/usr/lib/systemd/system"
    cp -a /lib/systemd/system/*.target "$dest/usr/lib/systemd/system/" 2>/dev/null || true
    # ExecReload=/bin/kill -HUP $MAINPID (SIGHUP reopens logs and reloads): the host's kill
    mkdir -p "$dest/bin" && cp /bin/kill "$dest/bin/kill"
    mkdir -p "$dest/etc/genesis-mesh"
    printf 'GM_NODE=a\nGM_AGENT_ARGS=--agent-id a --capability repo.summary\n' >"$dest/etc/genesis-mesh/agent-a.env"
    units=("$prefix/lib/systemd/system/genesis-mesh-na.service"
           "$prefix/lib/systemd/system/genesis-mesh-node@a.service"
           "$prefix/lib/systemd/system/genesis-mesh-agent@a.service")
    cp "$root/lib/systemd/system/genesis-mesh-node@.service" "$root/lib/systemd/system/genesis-mesh-node@a.service"
    cp "$root/lib/systemd/system/genesis-mesh-agent@.service" "$root/lib/systemd/system/genesis-mesh-agent@a.service"
    systemd-analyze verify --man=no --root="$dest" "${units[@]}" >"$tmp/verify.log" 2>&1 \
        || { cat "$tmp/verify.log" >&2; fail "systemd-analyze verify refused a unit"; }
    [ ! -s "$tmp/verify.log" ] || { cat "$tmp/verify.log" >&2; fail "systemd-analyze verify complained"; }
else
    echo "note: systemd-analyze not installed; units not verified" >&2
fi
echo "install layout, pkg-config and systemd units OK"
echo "1 passed, 0 failed"
