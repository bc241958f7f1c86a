#!/usr/bin/env python3
"""Writes the recorded answers of the Python reference's NA in this folder (run once; the
files are committed and the tests never run this script). Each answer follows the reference's
documented format (shared spec python-reference-na-api.md sections 4.2, 5.3-5.5, 6.2, 7): Flask
jsonify output (sorted keys, compact, trailing newline), timestamps as Python isoformat with
"+00:00" and microseconds. The signed ones are signed with the deterministic keys of formats.md
(NA seed 0x40..0x5f, node seed 0x00..0x1f; root seed 0x60..0x7f here) over the canonical JSON
computed here independently of our C code, with the `cryptography` package's Ed25519."""
import base64
import json
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization


def key(first):
    k = Ed25519PrivateKey.from_private_bytes(bytes(range(first, first + 32)))
    pub = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return k, base64.b64encode(pub).decode()


ROOT, ROOT_PK = key(0x60)
NA, NA_PK = key(0x40)
NODE, NODE_PK = key(0x00)

# canonical rendering of the reference's timestamps (formats.md): "+00:00" -> "Z", ".000000" dropped
CANON = {
    "2026-01-01T00:00:00+00:00": "2026-01-01T00:00:00Z",
    "2036-01-01T00:00:00+00:00": "2036-01-01T00:00:00Z",
    "2026-06-06T10:00:00.123456+00:00": "2026-06-06T10:00:00.123456Z",
    "2026-06-06T10:00:00.000000+00:00": "2026-06-06T10:00:00Z",
    "2035-06-06T10:00:00.000000+00:00": "2035-06-06T10:00:00Z",
}


def canon(v):
    if isinstance(v, dict):
        return {k: canon(x) for k, x in v.items()}
    if isinstance(v, list):
        return [canon(x) for x in v]
    return CANON.get(v, v) if isinstance(v, str) else v


def sign(doc, k, key_id):
    body = {x: y for x, y in doc.items() if x != "signatures"}
    data = json.dumps(canon(body), sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    doc["signatures"] = [{"key_id": key_id, "sig": base64.b64encode(k.sign(data)).decode()}]
    return doc


def write(name, obj):
    with open(name, "w") as f:
        f.write(json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n")


genesis = sign({
    "network_name": "REFNET", "network_version": "v0.1", "root_public_key": ROOT_PK,
    "network_authority": {"public_key": NA_PK, "valid_from": "2026-01-01T00:00:00+00:00",
                          "valid_to": "2036-01-01T00:00:00+00:00"},
    "allowed_crypto_suites": ["ed25519", "x25519"], "allowed_transports": ["quic", "wireguard"],
    "policy_manifest": {"hash": "sha256:placeholder", "url": None}, "bootstrap_anchors": [],
}, ROOT, "rs-local")
write("genesis.json", genesis)

write("policy-200.json", sign({
    "policy_id": "policy-REFNET-v0.1", "issued_at": "2026-06-06T10:00:00.123456+00:00", "issued_by": "na-local",
    "min_client_version": "0.1.0", "allowed_ports": [443, 8443], "allowed_services": ["service-1", "service-2"],
    "routing": {"preferred_transports": ["quic", "wireguard"], "max_hops": 6},
}, NA, "na-local"))

write("join-201.json", sign({
    "cert_id": "5ac77e28-aaed-423d-9064-7e0ddf33e9ef", "node_public_key": NODE_PK, "network_name": "REFNET",
    "roles": ["role:client"], "issued_at": "2026-06-06T10:00:00.000000+00:00",
    "expires_at": "2035-06-06T10:00:00.000000+00:00", "issued_by": "na-local",
}, NA, "na-local"))

write("invite-201.json", {"expires_at": "2026-06-07T10:00:00.123456+00:00",
                          "token_id": "16dd0c07-2f4c-44b9-a203-b5d8ee2d1f53"})
write("revoke-200.json", {"crl_sequence": 1, "revoked_count": 1})
write("heartbeat-200.json", {"ack": True, "server_time": "2026-06-06T10:00:01.654321+00:00"})
write("renew-201.json", sign({
    "cert_id": "9b2f6a30-11e1-4c1e-9a57-3f1f7f0c2b11", "node_public_key": NODE_PK, "network_name": "REFNET",
    "roles": ["role:client"], "issued_at": "2026-06-06T10:00:00.000000+00:00",
    "expires_at": "2035-06-06T10:00:00.000000+00:00", "issued_by": "na-local",
}, NA, "na-local"))


def error(code, message):
    return {"error": {"code": code, "details": {}, "message": message,
                      "request_id": "0b7e5f0e-1c55-4a8e-9d1f-6c3a1f2b9e77"}}


write("join-403-invalid-invite-token.json", error("invalid_invite_token", "Invalid, expired, or used invite token"))
write("admin-401-admin-auth-failed.json", error("admin_auth_failed", "Invalid admin signature"))
write("revoke-404-certificate-not-found.json", error("certificate_not_found", "Certificate not found"))
write("heartbeat-401-node-auth-failed.json", error("node_auth_failed", "Nonce already used (replay detected)"))
sys.exit(0)
