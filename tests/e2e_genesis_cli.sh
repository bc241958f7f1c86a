#!/usr/bin/env bash
# End-to-end test of the offline commands: `genesis keygen|create|sign|verify|show` (the root
# ceremony, the Python reference blocks, tampering, malformed input) and `cert verify` on the
# spec's certificate and CRL vectors (NA seed 0x40..0x5f) under a genesis naming that NA key.
set -euo pipefail

GM_BIN="${GM_BIN:-${GM_BUILD:-build}/genesis-mesh}"
GM_VECTORS="${GM_VECTORS:-$(dirname "$0")/vectors}"
VEC="$GM_VECTORS/python-reference"
[ -x "$GM_BIN" ] || { echo "FAIL: genesis-mesh binary not found (set GM_BIN)" >&2; exit 1; }
[ -d "$VEC" ] || { echo "FAIL: vectors not found in $VEC (set GM_VECTORS)" >&2; exit 1; }
# absolute paths: the ceremony part runs inside the temp directory
GM_BIN="$(cd "$(dirname "$GM_BIN")" && pwd)/$(basename "$GM_BIN")"
VEC="$(cd "$VEC" && pwd)"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"

T="$(mktemp -d "${TMPDIR:-/tmp}/gm-e2e-genesis.XXXXXX")"
cleanup() { rm -rf "$T"; }
trap cleanup EXIT

PASSED=0
OUT="$T/out"
die() { echo "FAIL: $*" >&2; sed 's/^/    | /' "$OUT" >&2 || true; exit 1; }

# ok DESC CMD... : must exit 0
ok() {
    local desc="$1"; shift
    "$@" >"$OUT" 2>&1 || die "$desc (exit $?)"
    PASSED=$((PASSED + 1))
}
# ok_match DESC REGEX CMD... : must exit 0 and print REGEX
ok_match() {
    local desc="$1" re="$2"; shift 2
    ok "$desc" "$@"
    grep -Eq -- "$re" "$OUT" || die "$desc: output does not match /$re/"
}
# fails DESC CODE REGEX CMD... : must exit with CODE and print REGEX (to stdout or stderr)
fails() {
    local desc="$1" code="$2" re="$3"; shift 3
    local rc=0
    "$@" >"$OUT" 2>&1 || rc=$?
    [ "$rc" -eq "$code" ] || die "$desc: exit $rc, expected $code"
    grep -Eq -- "$re" "$OUT" || die "$desc: message does not match /$re/"
    grep -q "AddressSanitizer\|runtime error" "$OUT" && die "$desc: sanitizer report"
    PASSED=$((PASSED + 1))
}
gm() { "$GM_BIN" "$@"; }

# ---------------------------------------------------------------- reference blocks
declare -A INSIDE=([genesis-001]=2026-07-01T00:00:00Z [genesis-naive-times]=2026-02-01T00:00:00Z
                   [genesis-ons-a]=2026-07-01T00:00:00Z)
declare -A NAME=([genesis-001]=001-NA [genesis-naive-times]=USG [genesis-ons-a]=ONS-A-NA)
for v in genesis-001 genesis-naive-times genesis-ons-a; do
    f="$VEC/$v.signed.json"
    ok_match "$v verifies" "^OK: genesis of network ${NAME[$v]} verified \(1 signature, root key [A-Za-z0-9+/]{43}=\)" \
        gm genesis verify "$f" --at "${INSIDE[$v]}"
    grep -q "clock skew allowance 300s" "$OUT" || die "$v: skew not stated"
    fails "$v after its NA window" 1 "outside its validity window.*expired at" gm genesis verify "$f" --at 2027-01-01T00:00:00Z
    fails "$v before its NA window" 1 "not valid yet" gm genesis verify "$f" --at 2025-01-01T00:00:00Z
    ok_match "$v show" "network hash: +[0-9a-f]{64}$" gm genesis show "$f"
    grep -q "status: *verified" "$OUT" || die "$v show: not verified"
    ok_match "$v show --json" '"network_hash": "[0-9a-f]{64}"' gm genesis show "$f" --json
done
# naive timestamps are shown (and signed) without an offset
ok_match "naive times stay naive" "2026-01-21T16:44:37.925424 \.\. 2026-04-21T16:44:37.925424 " \
    gm genesis show "$VEC/genesis-naive-times.signed.json"

# ---------------------------------------------------------------- tampering and malformed input
G1="$VEC/genesis-001.signed.json"
AT=2026-07-01T00:00:00Z
sed 's/"001-NA"/"001-NB"/' "$G1" >"$T/t-name.json"
fails "tampered network_name" 1 "NOT verified.*does not verify" gm genesis verify "$T/t-name.json" --at $AT
sed 's/"sig": "ot7C8/"sig": "pt7C8/' "$G1" >"$T/t-sig.json"
fails "flipped signature byte" 1 "NOT verified" gm genesis verify "$T/t-sig.json" --at $AT
sed 's/"valid_to": "2026-09-04T10:22:05.230676Z"/"valid_to": "2036-09-04T10:22:05.230676Z"/' "$G1" >"$T/t-to.json"
fails "extended NA window" 1 "NOT verified" gm genesis verify "$T/t-to.json" --at $AT
sed 's/"bootstrap_anchors": \[\]/"bootstrap_anchors": [{"id": "evil", "endpoint": "203.0.113.66:7000"}]/' "$G1" >"$T/t-anchor.json"
grep -q evil "$T/t-anchor.json" || die "sed did not add the anchor"
fails "added anchor" 1 "NOT verified" gm genesis verify "$T/t-anchor.json" --at $AT
sed 's/"wireguard"/"wireguard", "tcp"/' "$G1" >"$T/t-transport.json"
fails "added transport" 1 "NOT verified" gm genesis verify "$T/t-transport.json" --at $AT
sed 's/"RHWZ762yWDnEXZUvQnGZxV4dV+Q4edcti706j44+4oU="/"A6EHv\/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="/' "$G1" >"$T/t-root.json"
fails "other root key" 1 "NOT verified" gm genesis verify "$T/t-root.json" --at $AT
sed 's/"key_id": "rs-local",/"key_id": "rs-local", "sig2": 1,/; s/^{$/{ "comment": "not signed",/' "$G1" >"$T/t-unknown.json"
grep -q comment "$T/t-unknown.json" || die "sed did not add the unknown member"
ok_match "unknown members ignored" "^OK: genesis of network 001-NA" gm genesis verify "$T/t-unknown.json" --at $AT
sed 's/"signatures": \[/"signatures": [ ], "x": [/' "$G1" >"$T/t-nosig.json"
fails "no signatures" 1 "not signed" gm genesis verify "$T/t-nosig.json" --at $AT
head -c 200 "$G1" >"$T/t-trunc.json"
fails "truncated JSON" 1 "not valid JSON" gm genesis verify "$T/t-trunc.json"
{ cat "$G1"; echo '{}'; } >"$T/t-trailing.json"
fails "trailing garbage" 1 "not valid JSON" gm genesis verify "$T/t-trailing.json"
: >"$T/t-empty.json"
fails "empty file" 1 "not valid JSON" gm genesis verify "$T/t-empty.json"
sed 's/"network_name": "001-NA"/"network_name": 1/' "$G1" >"$T/t-type.json"
fails "wrong type" 1 '"network_name" must be a string' gm genesis verify "$T/t-type.json"
fails "missing file" 1 "cannot open" gm genesis verify "$T/does-not-exist.json"
fails "show of malformed" 1 "not valid JSON" gm genesis show "$T/t-trunc.json"
ok_match "show of tampered says so" "signature does not verify|does not verify" gm genesis show "$T/t-name.json"
grep -q "INVALID" "$OUT" || die "show of tampered: signature not marked INVALID"

# ---------------------------------------------------------------- usage
for sub in keygen create sign verify show; do
    ok_match "genesis $sub --help" "^usage: genesis-mesh genesis $sub" gm genesis $sub --help
done
ok_match "genesis --help" "^usage: genesis-mesh genesis" gm genesis --help
ok_match "cert --help" "^usage: genesis-mesh cert verify" gm cert verify --help
fails "genesis without subcommand" 2 "usage" gm genesis
fails "unknown subcommand" 2 "unknown subcommand" gm genesis frobnicate
fails "verify without file" 2 "FILE is required" gm genesis verify
fails "verify bad --at" 2 "bad timestamp" gm genesis verify "$G1" --at tomorrow
fails "create without args" 2 "--network NAME is required" gm genesis create
fails "cert verify without genesis" 2 "--genesis GENESIS are required" gm cert verify x.json
fails "cert unknown subcommand" 2 "unknown subcommand" gm cert check x.json

# ---------------------------------------------------------------- offline ceremony
cd "$T"
ok_match "keygen root" "^public key: [A-Za-z0-9+/]{43}=$" gm genesis keygen --out root --key-id rs-local
ok "keygen na" gm genesis keygen --out na --key-id na-local
[ "$(stat -c %a root.key)" = 600 ] || die "root.key mode is $(stat -c %a root.key), not 600"
[ "$(stat -c %a na.key)" = 600 ] || die "na.key mode is not 600"
grep -q "^# Key ID: rs-local$" root.key || die "root.key has no key id line"
cp root.key root.key.orig
fails "keygen refuses overwrite" 1 "refusing to overwrite" gm genesis keygen --out root
cmp -s root.key root.key.orig || die "keygen overwrote root.key"
fails "keygen bad key id" 2 "key id" gm genesis keygen --out other --key-id 'bad id'
fails "create bad anchor" 2 "HOST:PORT" gm genesis create --network NET --root-pub root.pub --na-pub na.pub \
    --anchor nohostport --out g.json
fails "create bad port" 2 "port" gm genesis create --network NET --root-pub root.pub --na-pub na.pub \
    --anchor a=host:70000 --out g.json
fails "create bad days" 2 "valid-days" gm genesis create --network NET --root-pub root.pub --na-pub na.pub \
    --valid-days 0 --out g.json
fails "create bad name" 2 "network name" gm genesis create --network 'bad name' --root-pub root.pub \
    --na-pub na.pub --out g.json
fails "create same keys" 1 "same key" gm genesis create --network NET --root-pub root.pub --na-pub root.pub --out g.json
fails "create missing key file" 1 "cannot open" gm genesis create --network NET --root-pub nope.pub --na-pub na.pub \
    --out g.json
ok_match "create" "unsigned genesis block for network MESHNET" gm genesis create --network MESHNET \
    --root-pub root.pub --na-pub na --valid-days 30 --anchor anchor-1=127.0.0.1:7000 --anchor 'anchor-2=[::1]:7001' \
    --out genesis.json
fails "create refuses overwrite" 1 "already exists" gm genesis create --network MESHNET --root-pub root.pub \
    --na-pub na.pub --out genesis.json
fails "unsigned does not verify" 1 "not signed" gm genesis verify genesis.json
ok_match "sign --out elsewhere" "wrote signed-copy.json" gm genesis sign --in genesis.json --root-key root --out signed-copy.json
ok_match "signed copy verifies" "^OK: genesis of network MESHNET" gm genesis verify signed-copy.json
fails "input left unsigned" 1 "not signed" gm genesis verify genesis.json
fails "sign with the NA key refused" 1 "is not this block's root_public_key" gm genesis sign --in genesis.json --root-key na
fails "sign with missing key" 1 "cannot open" gm genesis sign --in genesis.json --root-key nokey
ok_match "sign with the root key" "signed genesis block of network MESHNET" gm genesis sign --in genesis.json --root-key root
ok_match "ceremony block verifies" "^OK: genesis of network MESHNET verified \(1 signature, root key $(tail -1 root.pub | sed 's/[+/]/\\&/g')\)" \
    gm genesis verify genesis.json
ok_match "sign twice is a no-op" "already signed" gm genesis sign --in genesis.json --root-key root
ok_match "still one signature" "verified \(1 signature" gm genesis verify genesis.json
ok_match "show lists anchors" "anchor-2 at \[::1\]:7001" gm genesis show genesis.json
ok_match "copy of a signed block" "copied it to copy2.json" gm genesis sign --in genesis.json --root-key root --out copy2.json
cmp -s genesis.json copy2.json || die "copy differs"
fails "sign --out refuses overwrite" 1 "already exists" gm genesis sign --in genesis.json --root-key root --out root.pub
sed 's/"MESHNET"/"MESHNET2"/' genesis.json >edited.json
fails "edited after signing" 1 "NOT verified" gm genesis verify edited.json
fails "signing an edited block refused" 1 "existing signature does not match" gm genesis sign --in edited.json --root-key root

# ---------------------------------------------------------------- cert verify on the spec vectors
# A genesis for TESTNET naming the spec NA key, valid when the spec certificate was issued.
printf '# Ed25519 Public Key\n# Key ID: na-local\nJUO5L/EJVRFHatyDadtt3JM2ZaEZeN2hQE7hBmypVZ0=\n' >spec-na.pub
ok "spec genesis" gm genesis create --network TESTNET --root-pub root.pub --na-pub spec-na.pub \
    --valid-from 2026-06-01T00:00:00Z --valid-days 365 --out testnet.json
ok "spec genesis signed" gm genesis sign --in testnet.json --root-key root
ok "other network" gm genesis create --network OTHERNET --root-pub root.pub --na-pub spec-na.pub \
    --valid-from 2026-06-01T00:00:00Z --valid-days 365 --out othernet.json
ok "other network signed" gm genesis sign --in othernet.json --root-key root
ok "same network, other NA" gm genesis create --network TESTNET --root-pub root.pub --na-pub na.pub \
    --valid-from 2026-06-01T00:00:00Z --valid-days 365 --out testnet-other-na.json
ok "same network, other NA signed" gm genesis sign --in testnet-other-na.json --root-key root
cat >cert.json <<'EOF'
{
  "cert_id": "00000000-0000-4000-8000-0000000000cc",
  "node_public_key": "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
  "network_name": "TESTNET",
  "roles": ["role:anchor"],
  "issued_at": "2026-06-06T10:00:00+00:00",
  "expires_at": "2026-06-13T10:00:00.000000Z",
  "issued_by": "na-local",
  "signatures": [{"key_id": "na-local", "sig": "8AQCB642cvO2NW0hrMjMIj+Lh289sIBq++DOB9W+kZBQcVY3stMypYOKnm67Skp1K50guJoAQdlP8ddti6RlAg=="}]
}
EOF
cat >crl.json <<'EOF'
{"crl_id":"00000000-0000-4000-8000-0000000000dd","issued_at":"2026-06-06T10:05:00.500000Z","issuer":"na-local","next_update":"2026-06-07T10:05:00.500000Z","revoked_certificates":[{"certificate_id":"00000000-0000-4000-8000-0000000000cc","issuer":"na-local","reason":"key_compromise","revoked_at":"2026-06-06T10:05:00.250000Z"}],"sequence":1,"signatures":[{"key_id":"na-local","sig":"6YYcQL3hSOH7sgp8let2vfCPNmJvCfDuaBEhi2VNqWGBB1jo3z1gglj3jcgj29lz0vsZKCjWbQnCP5X/D1kGAw=="}]}
EOF
CAT=2026-06-08T00:00:00Z
ok_match "spec certificate valid" "^OK: certificate 00000000-0000-4000-8000-0000000000cc is valid" \
    gm cert verify cert.json --genesis testnet.json --at $CAT
grep -q "clock skew allowance 300s" "$OUT" || die "cert verify: skew not stated"
grep -q "roles: *role:anchor" "$OUT" || die "cert verify: roles not shown"
ok_match "within skew after expiry" "^OK" gm cert verify cert.json --genesis testnet.json --at 2026-06-13T10:04:59Z
fails "expired beyond skew" 1 "INVALID \(certificate, clock skew allowance 300s\).*expired at 2026-06-13T10:00:00Z" \
    gm cert verify cert.json --genesis testnet.json --at 2026-06-13T10:05:01Z
fails "not yet valid" 1 "not valid before 2026-06-06T10:00:00Z" gm cert verify cert.json --genesis testnet.json \
    --at 2026-06-06T09:54:00Z
fails "revoked by the spec CRL" 1 "revoked \(key_compromise, CRL sequence 1\)" \
    gm cert verify cert.json --genesis testnet.json --crl crl.json --at $CAT
ok_match "--json valid" '"valid": true' gm cert verify cert.json --genesis testnet.json --at $CAT --json
fails "--json revoked" 1 '"code": "revoked"' gm cert verify cert.json --genesis testnet.json --crl crl.json --at $CAT --json
grep -q '"valid": false' "$OUT" || die "--json revoked: valid is not false"
fails "wrong network" 1 "for network 'TESTNET', not 'OTHERNET'" gm cert verify cert.json --genesis othernet.json --at $CAT
fails "genesis with another NA" 1 "not signed by this network's NA" gm cert verify cert.json --genesis testnet-other-na.json \
    --at $CAT
sed 's/role:anchor/role:supervisor/' cert.json >cert-roles.json
fails "tampered roles" 1 "not signed by this network's NA" gm cert verify cert-roles.json --genesis testnet.json --at $CAT
sed 's/"sequence":1/"sequence":7/' crl.json >crl-seq.json
fails "CRL with a bad signature" 1 "INVALID \(crl\).*not signed by this network's NA" \
    gm cert verify cert.json --genesis testnet.json --crl crl-seq.json --at $CAT
sed 's/key_compromise/because/' crl.json >crl-reason.json
fails "CRL with an unknown reason" 1 "INVALID \(crl\).*reason" \
    gm cert verify cert.json --genesis testnet.json --crl crl-reason.json --at $CAT
fails "NA key outside its window" 1 "INVALID \(genesis.*the NA key expired" gm cert verify cert.json --genesis testnet.json \
    --at 2028-01-01T00:00:00Z
# error paths
fails "missing certificate" 1 "cannot open" gm cert verify nope.json --genesis testnet.json --at $CAT
head -c 50 cert.json >cert-trunc.json
fails "malformed certificate" 1 "not valid JSON" gm cert verify cert-trunc.json --genesis testnet.json --at $CAT
echo '{"cert_id": "x"}' >cert-shape.json
fails "certificate missing members" 1 "INVALID \(certificate\)" gm cert verify cert-shape.json --genesis testnet.json
fails "missing genesis" 1 "INVALID \(genesis\).*cannot open" gm cert verify cert.json --genesis nope.json
fails "malformed genesis" 1 "INVALID \(genesis\).*not valid JSON" gm cert verify cert.json --genesis "$T/t-trunc.json"
sed 's/"TESTNET"/"TESTNEX"/' testnet.json >testnet-bad.json
fails "unsigned-matching genesis" 1 "INVALID \(genesis\).*does not verify" gm cert verify cert.json \
    --genesis testnet-bad.json --at $CAT
fails "missing CRL" 1 "INVALID \(crl\).*cannot open" gm cert verify cert.json --genesis testnet.json --crl nope.json \
    --at $CAT
fails "bad --at" 2 "bad timestamp" gm cert verify cert.json --genesis testnet.json --at soon

echo "e2e_genesis_cli: $PASSED checks passed"
