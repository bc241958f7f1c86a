#!/usr/bin/env bash
# `genesis-mesh na check-config --dir D` (and `na start --check`) and `node start --check`:
# a good configuration exits 0 and says what was checked; each bad one exits 1 with a message
# naming what is wrong (key file mode, directory mode, a config.json typo, a genesis block
# that does not verify, an NA key that is not the genesis NA key, a TLS key that is not the
# certificate's, a bad listen address, missing TLS; for nodes: key and directory modes, a
# certificate of another key, a genesis of another network, a missing certificate, bad
# --listen / --metrics-listen / --peer). A check starts nothing: no database, no socket, no
# port file. Each bad case is made in a copy of the good directory, so the good one stays good.
. "$(dirname "$0")/lib_e2e.sh"

# expect_ok WHAT cmd...: exit 0 and "is valid" on stdout.
expect_ok() {
    local what="$1" rc=0; shift
    "$@" >"$E2E_TMP/check.out" 2>&1 || rc=$?
    [ "$rc" = 0 ] || fail "$what: exit $rc: $(cat "$E2E_TMP/check.out")"
    grep -q "is valid" "$E2E_TMP/check.out" || fail "$what: no verdict: $(cat "$E2E_TMP/check.out")"
}
# expect_bad WHAT ERE cmd...: exit 1 and a message matching ERE, no sanitizer report.
expect_bad() {
    local what="$1" re="$2" rc=0; shift 2
    "$@" >"$E2E_TMP/check.out" 2>&1 || rc=$?
    [ "$rc" = 1 ] || fail "$what: exit $rc (want 1): $(cat "$E2E_TMP/check.out")"
    grep -qE 'Sanitizer|runtime error' "$E2E_TMP/check.out" && fail "$what: sanitizer report: $(cat "$E2E_TMP/check.out")"
    grep -qiE -e "$re" "$E2E_TMP/check.out" || fail "$what: message does not match /$re/: $(cat "$E2E_TMP/check.out")"
    log "refused ($what): $(head -c 200 "$E2E_TMP/check.out")"
}
# fresh NAME: a copy of the good NA directory at $E2E_TMP/NAME (modes kept).
fresh() { rm -rf "${E2E_TMP:?}/$1"; cp -a "$GOOD" "$E2E_TMP/$1"; printf '%s' "$E2E_TMP/$1"; }

step "the NA: a directory made by init is valid"
GOOD="$E2E_TMP/na-good"
gm init --dir "$GOOD" --network CHECKNET >/dev/null 2>&1 || fail "init"
[ "$(stat -c %a "$GOOD")" = 700 ] || fail "init made the NA directory $(stat -c %a "$GOOD"), not 700"
expect_ok "na check-config" gm na check-config --dir "$GOOD"
grep -q "network 'CHECKNET'" "$E2E_TMP/check.out" || fail "the verdict does not name the network"
expect_ok "na start --check" gm na start --check --dir "$GOOD" --listen 127.0.0.1:0
[ ! -e "$GOOD/na.db" ] || fail "a check created the database"

step "the NA: bad configurations are refused with the reason"
d="$(fresh m1)"; chmod 644 "$d/na.key"
expect_bad "na.key 0644" "na.key has mode 0644.*chmod 600" gm na check-config --dir "$d"
d="$(fresh m2)"; chmod 755 "$d"
expect_bad "directory 0755" "has mode 0755.*chmod 700" gm na check-config --dir "$d"
d="$(fresh m3)"; chmod 640 "$d/tls.key"
expect_bad "tls.key 0640" "tls.key has mode 0640" gm na check-config --dir "$d"
d="$(fresh c1)"; python3 - "$d/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["max_conections"] = 5
json.dump(c, open(sys.argv[1], "w"))
EOF
expect_bad "config.json typo" "max_conections" gm na check-config --dir "$d"
d="$(fresh c2)"; python3 - "$d/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["listen"] = "not-an-address"
json.dump(c, open(sys.argv[1], "w"))
EOF
expect_bad "bad listen" "not-an-address" gm na check-config --dir "$d"
d="$(fresh g1)"; python3 - "$d/genesis.json" <<'EOF'
import json, sys
g = json.load(open(sys.argv[1])); g["allowed_transports"] = ["forged"]
json.dump(g, open(sys.argv[1], "w"))
EOF
expect_bad "tampered genesis" "does not verify" gm na check-config --dir "$d"
d="$(fresh k1)"; rm -f "$d/na.key" "$d/na.pub"
gm genesis keygen --out "$d/na" --key-id na-local >/dev/null 2>&1 || fail "keygen"
expect_bad "another NA key" "is not the NA key named in the genesis" gm na check-config --dir "$d"
gm init --dir "$E2E_TMP/other" --network OTHER >/dev/null 2>&1 || fail "init other"
d="$(fresh t1)"; cp "$E2E_TMP/other/tls.key" "$d/tls.key"
expect_bad "TLS key of another certificate" "is not the key of the certificate" gm na check-config --dir "$d"
d="$(fresh t2)"; echo "not a certificate" >"$d/tls.crt"
expect_bad "garbage TLS certificate" "not a PEM certificate" gm na check-config --dir "$d"
d="$(fresh t3)"; python3 - "$d/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); del c["tls_cert"]; del c["tls_key"]
json.dump(c, open(sys.argv[1], "w"))
EOF
expect_bad "no TLS, no plain_http" "no TLS certificate" gm na check-config --dir "$d"
expect_ok "the same with --plain-http" gm na start --check --plain-http --dir "$d"
expect_bad "na start --check --listen bad" "nowhere" gm na start --check --dir "$GOOD" --listen nowhere
expect_bad "no config.json" "config.json" gm na check-config --dir "$E2E_TMP/does-not-exist"
log "ok - na check-config: good exits 0, 11 bad configurations exit 1 with the reason"

step "nodes: a joined directory is valid"
e2e_na_start
e2e_node_join a role:a
e2e_node_join b role:b
A="$(node_dir a)"
expect_ok "node start --check" gm node start --check --dir "$A" --listen 127.0.0.1:0 \
    --metrics-listen 127.0.0.1:0 --peer localhost:7000
[ ! -e "$A/node.sock" ] && [ ! -e "$A/node.pid" ] || fail "a check started the node"
GOOD="$A"

step "nodes: bad configurations are refused with the reason"
d="$(fresh n1)"; chmod 644 "$d/node.key"
expect_bad "node.key 0644" "node.key has mode 0644" gm node start --check --dir "$d"
d="$(fresh n2)"; chmod 750 "$d"
expect_bad "node directory 0750" "has mode 0750" gm node start --check --dir "$d"
d="$(fresh n3)"; cp "$(node_dir b)/cert.json" "$d/cert.json"
expect_bad "certificate of another key" "is for key" gm node start --check --dir "$d"
d="$(fresh n4)"; cp "$E2E_TMP/other/genesis.json" "$d/genesis.json"
expect_bad "genesis of another network" "network|signature|not signed|NA" gm node start --check --dir "$d"
d="$(fresh n5)"; rm -f "$d/cert.json"
expect_bad "no certificate" "incomplete" gm node start --check --dir "$d"
expect_bad "bad --listen" "--listen nowhere" gm node start --check --dir "$A" --listen nowhere
expect_bad "bad --metrics-listen" "--metrics-listen 127.0.0.1:99999" gm node start --check --dir "$A" \
    --metrics-listen 127.0.0.1:99999
expect_bad "bad --peer" "--peer justahost" gm node start --check --dir "$A" --peer justahost
log "ok - node start --check: good exits 0, 8 bad configurations exit 1 with the reason"
e2e_finish
