#!/usr/bin/env python3
"""Watches many nodes at once through their local APIs (docs/local-api.md, op "status") for
bench_mesh_procs.sh, standard library only: one connection per node, a status request to each
every INTERVAL seconds, and the time (seconds since START, a CLOCK_REALTIME float) at which each
node first met the condition. Prints the median, p99 and maximum, or fails after TIMEOUT s.

  mesh_watch.py routes START TIMEOUT N SOCK...
      every node holds reachable routes to N-1 others
  mesh_watch.py revoked START TIMEOUT SEQ KEY SOCK...
      every node holds a CRL of sequence >= SEQ and no reachable route to KEY
"""
import json
import selectors
import socket
import sys
import time

INTERVAL = 0.02


def met(mode, args, d):
    routes = [r for r in d.get("routes", []) if r.get("metric", 65535) < 65535]
    if mode == "routes":
        return len({r["destination"] for r in routes}) >= int(args[0]) - 1
    seq, key = int(args[0]), args[1]
    return (d.get("crl_sequence") or 0) >= seq and all(r["destination"] != key for r in routes)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    mode, start, timeout = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    nargs = 1 if mode == "routes" else 2
    args, socks = sys.argv[4:4 + nargs], sys.argv[4 + nargs:]
    sel = selectors.DefaultSelector()
    conns = {}
    for path in socks:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.setblocking(False)
        conns[s] = {"path": path, "buf": b"", "busy": False, "next": 0.0, "done": None}
        sel.register(s, selectors.EVENT_READ)
    deadline = time.time() + timeout
    while any(c["done"] is None for c in conns.values()):
        now = time.time()
        if now > deadline:
            left = [c["path"] for c in conns.values() if c["done"] is None]
            sys.exit("mesh_watch: %d of %d nodes never met the condition within %.0f s (first: %s)"
                     % (len(left), len(conns), timeout, left[0]))
        for s, c in conns.items():
            if c["done"] is None and not c["busy"] and now >= c["next"]:
                s.sendall(b'{"op":"status"}\n')
                c["busy"] = True
        for key, _ in sel.select(INTERVAL):
            s, c = key.fileobj, conns[key.fileobj]
            chunk = s.recv(1 << 20)
            if not chunk:
                sys.exit("mesh_watch: %s closed the connection" % c["path"])
            c["buf"] += chunk
            while b"\n" in c["buf"]:
                line, c["buf"] = c["buf"].split(b"\n", 1)
                d = json.loads(line)
                if "routes" not in d and "crl_sequence" not in d:
                    continue  # an event, not the status answer
                c["busy"] = False
                c["next"] = time.time() + INTERVAL
                if c["done"] is None and met(mode, args, d):
                    c["done"] = time.time() - start
    t = [c["done"] for c in conns.values()]
    print("%.3f %.3f %.3f" % (pct(t, 50), pct(t, 99), max(t)))


if __name__ == "__main__":
    main()
