#!/usr/bin/env python3
"""A minimal client of the node's local API (docs/local-api.md), standard library only, for the
end-to-end tests (tests/e2e_local_api.sh): one-shot calls, an ask, and providers that behave
well or badly.

  local_api_client.py call SOCK LINE...            send each line, print the response to each
  local_api_client.py raw SOCK BYTES_FILE          send a file's bytes, print what comes back
  local_api_client.py ask SOCK CAP INPUT_JSON [DEADLINE_MS]
  local_api_client.py provider SOCK CAP MODE READY_FILE [AGENT_ID]
      MODE echo: answer {"echo": input, "requester": ...}; fail: answer an error;
           disconnect: exit on the first request without answering; silent: never answer
"""
import json
import os
import socket
import sys


class Conn:
    def __init__(self, path, timeout=60):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def send(self, obj):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.s.sendall(data + b"\n")

    def read(self):
        while b"\n" not in self.buf:
            c = self.s.recv(1 << 20)
            if not c:
                raise EOFError("the node closed the connection")
            self.buf += c
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def response(self, rid):
        """The response to request rid (None: the next response line); events are kept."""
        while True:
            m = self.read()
            if "event" in m:
                continue
            if rid is None or m.get("id") == rid:
                return m


def hello(c):
    c.send({"op": "hello", "id": "hello", "versions": [2]})
    r = c.response("hello")
    if not r.get("ok") or r.get("version") != 2:
        raise SystemExit("hello failed: %s" % r)


def main():
    cmd, sock = sys.argv[1], sys.argv[2]
    if cmd == "call":
        c = Conn(sock)
        for line in sys.argv[3:]:
            c.s.sendall(line.encode() + b"\n")
            try:
                rid = json.loads(line).get("id")
            except (ValueError, AttributeError):
                rid = None
            print(json.dumps(c.response(rid if isinstance(rid, (str, int)) else None)))
            sys.stdout.flush()
    elif cmd == "raw":
        c = Conn(sock, timeout=10)
        with open(sys.argv[3], "rb") as f:
            c.s.sendall(f.read())
        try:
            while True:
                print(json.dumps(c.read()))
        except (EOFError, socket.timeout, ConnectionResetError):
            pass
    elif cmd == "ask":
        c = Conn(sock, timeout=120)
        hello(c)
        req = {"op": "ask", "id": "ask", "capability": sys.argv[3], "input": json.loads(sys.argv[4])}
        if len(sys.argv) > 5:
            req["deadline_ms"] = int(sys.argv[5])
        c.send(req)
        print(json.dumps(c.response("ask")))
    elif cmd == "provider":
        cap, mode, ready = sys.argv[3], sys.argv[4], sys.argv[5]
        c = Conn(sock, timeout=None)
        hello(c)
        req = {"op": "provide", "id": "provide", "capability": cap, "description": "test provider (%s)" % mode,
               "input_schema": {"type": "object"}}
        if len(sys.argv) > 6:
            req["agent_id"] = sys.argv[6]
        c.send(req)
        r = c.response("provide")
        if not r.get("ok"):
            raise SystemExit("provide failed: %s" % r)
        with open(ready, "w") as f:
            f.write(json.dumps(r))
        n = 0
        while True:
            try:
                m = c.read()
            except EOFError:
                return
            if m.get("event") != "request":
                if m.get("ok") is False:
                    sys.stderr.write("refused: %s\n" % m)
                continue
            n += 1
            if mode == "disconnect":
                os._exit(0)
            if mode == "silent":
                continue
            a = {"op": "answer", "id": "a%d" % n, "request_id": m["request_id"]}
            if mode == "fail":
                a["error"] = {"code": "invalid_input", "message": "this provider refuses %s" % json.dumps(m["input"])}
            else:
                a["output"] = {"echo": m["input"], "requester": m["requester"]}
                a["detail"] = "echoed by a test provider"
            c.send(a)
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
