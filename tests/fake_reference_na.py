#!/usr/bin/env python3
"""A tiny stand-in for the Python reference's NA (standard library only) that answers with its
recorded answers (tests/vectors/reference-answers/), so that our CLI can be run against the
reference's answer shapes: e2e_reference_answers.sh. It checks the shape of what it is sent the
way the reference does (JSON content type, node proof-of-possession members, the four X-Admin-*
headers) but verifies no signature, and logs each request as one JSON line.

usage: fake_reference_na.py ANSWERS_DIR PORT_FILE REQUEST_LOG"""
import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWERS, PORT_FILE, LOG = sys.argv[1:4]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TZ_AWARE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$")
USED_TOKEN = "used-token-0000"
MAX_BODY = 65536


def answer(name):
    with open(os.path.join(ANSWERS, name), "rb") as f:
        return f.read()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-ID", "0b7e5f0e-1c55-4a8e-9d1f-6c3a1f2b9e77")
        self.end_headers()
        self.wfile.write(body)

    def record(self, body):
        with open(LOG, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path, "body": body,
                                "headers": {k.lower(): v for k, v in self.headers.items()}}) + "\n")

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(n, MAX_BODY)) if n else b""
        # like Flask's get_json(silent=True): no JSON content type reads as {}
        if "application/json" not in (self.headers.get("Content-Type") or ""):
            return {}
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def node_pop_ok(self, body):
        return (isinstance(body.get("timestamp"), str) and TZ_AWARE.match(body["timestamp"]) and
                isinstance(body.get("nonce"), str) and body["nonce"] and
                isinstance(body.get("signature"), str) and len(body["signature"]) == 88)

    def admin_ok(self):
        h = self.headers
        return all(h.get(x) for x in ("X-Admin-Key-Id", "X-Admin-Timestamp", "X-Admin-Nonce", "X-Admin-Signature")) \
            and TZ_AWARE.match(h.get("X-Admin-Timestamp"))

    def do_GET(self):
        self.record(None)
        if self.path == "/genesis":
            return self.send(200, answer("genesis.json"))
        if self.path == "/policy":
            return self.send(200, answer("policy-200.json"))
        return self.send(404, b'{"error":{"code":"not_found","details":{},"message":"Not Found","request_id":"x"}}\n')

    def do_POST(self):
        body = self.read_body()
        self.record(body)
        if body is None:
            return self.send(400, b'{"error":{"code":"invalid_json","details":{},"message":"bad","request_id":"x"}}\n')
        if self.path == "/join":
            if not body.get("node_public_key") or not body.get("invite_token"):
                return self.send(400, answer("join-403-invalid-invite-token.json"))
            if body["invite_token"] == USED_TOKEN:
                return self.send(403, answer("join-403-invalid-invite-token.json"))
            if not self.node_pop_ok(body):
                return self.send(401, answer("heartbeat-401-node-auth-failed.json"))
            return self.send(201, answer("join-201.json"))
        if self.path == "/renew":
            if not self.node_pop_ok(body) or not UUID.match(body.get("cert_id") or ""):
                return self.send(401, answer("heartbeat-401-node-auth-failed.json"))
            return self.send(201, answer("renew-201.json"))
        if self.path.startswith("/admin/") and not self.admin_ok():
            return self.send(401, answer("admin-401-admin-auth-failed.json"))
        if self.path == "/admin/invite":
            return self.send(201, answer("invite-201.json"))
        if self.path == "/admin/revoke":
            if body.get("cert_id") == "00000000-0000-4000-8000-000000000404":
                return self.send(404, answer("revoke-404-certificate-not-found.json"))
            return self.send(200, answer("revoke-200.json"))
        return self.send(404, b'{"error":{"code":"not_found","details":{},"message":"Not Found","request_id":"x"}}\n')


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
