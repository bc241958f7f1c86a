#!/usr/bin/env python3
"""A client of the node's local API with binary frames (docs/local-api.md "Binary frames"),
standard library only, for tests/e2e_api_frames.sh and bench/bench_node.sh.

  api_frames_client.py boundaries SOCK_FROM SOCK_TO KEY_TO KEY_FROM
      sizes 0, 1, 256 (every byte value), max and max+1 (refused with too_big, named by seq, the
      connection stays usable); a JSON-only subscriber gets the same bytes in base64
  api_frames_client.py noted SOCK_FROM SOCK_TO KEY_TO
      a capability request the access policy let in reaches a frames-2 subscriber as a noted
      frame (flag bit 1: note length, note, request) and a frames-1 one as a JSON event with
      "authorized"; one too big for a frame with its note comes as the JSON event to both
  api_frames_client.py refusals SOCK_FROM NO_ROUTE_KEY
      a bad head is refused and the connection closed; a send without a route is reported
  api_frames_client.py park SOCK_FROM SOCK_TO KEY_TO
      an unsubscribed (parked) connection gets nothing, another subscriber gets it all; subscribed
      again, it gets what comes next
  api_frames_client.py requests-only SOCK_FROM SOCK_TO KEY_TO
      a subscription with requests_only gets what may be a capability request,
      not the rest (a provider loop's: the answers to its nested calls are not its own)
  api_frames_client.py slow SOCK_FROM SOCK_TO KEY_TO COUNT SIZE
      a subscriber that reads slowly; the sender is slowed, every message arrives in order
  api_frames_client.py stuck SOCK_FROM SOCK_TO KEY_TO COUNT SIZE
      a subscriber that never reads is cut off and told; the sender goes on
  api_frames_client.py unread SOCK_FROM SOCK_TO KEY_TO COUNT SIZE
      a subscriber that reads nothing until all COUNT messages were delivered to it: its socket
      takes them at once (metric api_writes_queued unchanged at the receiving node), then all arrive
  api_frames_client.py pump SOCK_FROM SOCK_TO KEY_TO SIZE COUNT
      throughput: prints "MB/s received sent send_failed cpu_s" (cpu_s: this process's CPU time)
"""
import base64
import json
import os
import socket
import struct
import sys
import threading
import time

HDR = struct.Struct(">BBBBII32s")  # type, flags, port_len, 0, seq, len, key
SEND, MESSAGE, ACK, NOTED = 1, 2, 1, 2


def fail(msg):
    sys.exit("FAIL: " + msg)


class Conn:
    """One connection: JSON lines and binary frames, both directions."""

    def __init__(self, path, frames=True, timeout=120):
        """frames: True (version 1) or a version number to ask for; None: no hello."""
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = bytearray(8 << 20)
        self.r = self.w = 0
        self.max_data = None
        self.flags = 0  # of the last frame read
        if frames is not None:
            hello = {"op": "hello", "id": "h", "versions": [2]}
            if frames:
                hello["frames"] = 1 if frames is True else frames
            self.json(hello)
            kind, m = self.next()
            if kind != "json" or not m.get("ok"):
                fail("hello refused: %r" % (m,))
            if frames and m.get("frames") != hello["frames"]:
                fail("the node did not agree on frames: %r" % m)
            self.max_data = m.get("max_frame_data")

    def json(self, obj):
        self.s.sendall(json.dumps(obj).encode() + b"\n")

    def send(self, key, port, data, seq=0, ack=False):
        head = HDR.pack(SEND, ACK if ack else 0, len(port), 0, seq, len(data), key) + port.encode()
        parts = [head, data] if data else [head]
        while parts:
            k = self.s.sendmsg(parts)
            while parts and k >= len(parts[0]):
                k -= len(parts[0])
                parts.pop(0)
            if parts and k:
                parts[0] = memoryview(parts[0])[k:]

    def _fill(self):
        if self.r == self.w:
            self.r = self.w = 0
        elif len(self.buf) - self.w < (1 << 20):
            self.buf[: self.w - self.r] = self.buf[self.r : self.w]
            self.w -= self.r
            self.r = 0
        k = self.s.recv_into(memoryview(self.buf)[self.w :])
        if k == 0:
            raise EOFError("the node closed the connection")
        self.w += k

    def next(self):
        """('frame', from_key, port, bytes) or ('json', object)."""
        while True:
            avail = self.w - self.r
            if avail and self.buf[self.r] in (SEND, MESSAGE):
                if avail >= HDR.size:
                    t, flags, plen, _z, _seq, ln, key = HDR.unpack_from(self.buf, self.r)
                    if avail >= HDR.size + plen + ln:
                        p = self.r + HDR.size
                        port = bytes(self.buf[p : p + plen]).decode()
                        data = bytes(self.buf[p + plen : p + plen + ln])
                        self.r = p + plen + ln
                        self.flags = flags
                        return "frame", key, port, data
            elif avail:
                nl = self.buf.find(b"\n", self.r, self.w)
                if nl >= 0:
                    line = bytes(self.buf[self.r : nl])
                    self.r = nl + 1
                    if line:
                        return "json", json.loads(line)
                    continue
            self._fill()

    def until_json(self, pred):
        """Read until a JSON line matching pred; frames before it are returned too."""
        frames = []
        while True:
            kind, *m = self.next()
            if kind == "json" and pred(m[0]):
                return m[0], frames
            if kind == "frame":
                frames.append(m)


def subscribe(path, port, frames=True):
    c = Conn(path, frames)
    c.json({"op": "subscribe", "id": "s", "port": port})
    r, _ = c.until_json(lambda m: m.get("id") == "s")
    if not r.get("ok"):
        fail("subscribe refused: %r" % r)
    return c


def metric(path, name):
    c = Conn(path, None)
    c.json({"op": "metrics"})
    _, m = c.next()
    return m["metrics"][name]


def read_events(c, upto_id):
    events = []
    while True:
        kind, *m = c.next()
        if kind != "json":
            fail("a sender got a frame: %r" % (m[:2],))
        if m[0].get("id") == upto_id:
            return events
        events.append(m[0])


def boundaries(src, dst, key_b64, src_key):
    key = base64.b64decode(key_b64)
    port = "frames%d" % os.getpid()
    sub = subscribe(dst, port)
    old = subscribe(dst, port, frames=None)
    c = Conn(src)
    mx = c.max_data
    if not isinstance(mx, int) or mx < 60000:
        fail("max_frame_data %r" % mx)
    every = bytes(range(256))
    payloads = [b"", b"\x00", every, (every * (mx // 256 + 1))[:mx], bytes([0x0A, 0x02, 0x01, 0xFF]) * 3]
    for i, p in enumerate(payloads):
        c.send(key, port, p, seq=i + 1, ack=True)
    c.send(key, port, b"\x01" * (mx + 1), seq=99, ack=True)  # one byte too many: refused, skipped
    c.send(key, port, b"after", seq=100, ack=True)
    c.json({"op": "status", "id": "end"})
    ev = read_events(c, "end")
    want = [{"event": "sent", "seq": i + 1} for i in range(len(payloads))]
    if ev[: len(payloads)] != want:
        fail("acks: %r" % ev)
    tb = ev[len(payloads)]
    if tb.get("event") != "send_failed" or tb.get("seq") != 99 or tb["error"]["code"] != "too_big" \
            or str(mx + 1) not in tb["error"]["message"]:
        fail("max+1 not refused clearly: %r" % tb)
    if ev[len(payloads) + 1 :] != [{"event": "sent", "seq": 100}]:
        fail("the connection is not usable after a refused frame: %r" % ev)
    expect = payloads + [b"after"]
    for p in expect:
        kind, frm, fport, data = sub.next()
        if kind != "frame" or fport != port or data != p:
            fail("frame subscriber got %r bytes %r..., wanted %d bytes" % (kind, data[:8], len(p)))
        if frm != base64.b64decode(src_key):
            fail("wrong sender key")
        kind, m = old.next()
        if kind != "json" or m.get("event") != "message" or base64.b64decode(m["data"]) != p:
            fail("JSON subscriber got %r" % (m,))
    print("boundaries ok: sizes %s, max %d, max+1 refused" % ([len(p) for p in payloads], mx))


def park(src, dst, key_b64):
    key = base64.b64decode(key_b64)
    port = "park%d" % os.getpid()
    a, b = subscribe(dst, port), subscribe(dst, port)
    a.json({"op": "hello", "id": "h2", "versions": [2]})
    h, _ = a.until_json(lambda m: m.get("id") == "h2")
    if h.get("ok") is not False:
        fail("a second hello was accepted: %r" % h)
    c = Conn(src)
    a.json({"op": "unsubscribe", "id": "u"})
    r, _ = a.until_json(lambda m: m.get("id") == "u")
    if r != {"ok": True, "id": "u"}:
        fail("unsubscribe: %r" % r)
    c.send(key, port, b"while parked", seq=1, ack=True)
    kind, _frm, _p, data = b.next()
    if kind != "frame" or data != b"while parked":
        fail("the other subscriber did not get the message: %r" % data)
    # b has it, so the node has delivered it to every subscriber; a was not one
    a.json({"op": "subscribe", "id": "s2", "port": port})
    r, frames = a.until_json(lambda m: m.get("id") == "s2")
    if not r.get("ok") or frames:
        fail("a parked connection got %d frame(s): %r" % (len(frames), [f[2] for f in frames]))
    c.send(key, port, b"after", seq=2, ack=True)
    for who, conn in (("resubscribed", a), ("other", b)):
        kind, _frm, _p, data = conn.next()
        if kind != "frame" or data != b"after":
            fail("the %s subscriber got %r, wanted b'after'" % (who, data))
    # quiet: success is not answered (a requester's park and its next subscribe), failures are
    a.json({"op": "unsubscribe", "id": "qu", "quiet": True})
    a.json({"op": "subscribe", "id": "qs", "port": port, "quiet": True})
    a.json({"op": "subscribe", "id": "qbad", "port": "NOT A PORT", "quiet": True})
    a.json({"op": "unsubscribe", "id": "qtype", "quiet": "yes"})
    a.json({"op": "status", "id": "mark"})
    lines = []
    while not lines or lines[-1].get("id") != "mark":
        r, frames = a.until_json(lambda m: "id" in m)
        if frames:
            fail("frames while parking quietly: %r" % frames)
        lines.append(r)
    ids = [m.get("id") for m in lines]
    if ids != ["qbad", "qtype", "mark"]:
        fail("quiet park/subscribe: wanted answers to qbad, qtype, mark only, got %r" % lines)
    if lines[0].get("ok") is not False or lines[1].get("ok") is not False or "quiet" not in lines[1]["error"]["message"]:
        fail("quiet failures not reported: %r" % lines[:2])
    c.send(key, port, b"quiet", seq=3, ack=True)
    for who, conn in (("quietly resubscribed", a), ("other", b)):
        kind, _frm, _p, data = conn.next()
        if kind != "frame" or data != b"quiet":
            fail("the %s subscriber got %r, wanted b'quiet'" % (who, data))
    v1 = Conn(dst, None)
    v1.json({"op": "unsubscribe"})
    _, m = v1.next()
    if m.get("ok") is not False or m["error"]["code"] != "unknown_op":
        fail("unsubscribe without hello (version 1): %r" % m)
    print("park ok")


def requests_only(src, dst, key_b64):
    key = base64.b64decode(key_b64)
    bad = Conn(dst)
    bad.json({"op": "subscribe", "id": "b", "port": "capability", "requests_only": "yes"})
    r, _ = bad.until_json(lambda m: m.get("id") == "b")
    if r.get("ok") is not False or "requests_only" not in r["error"]["message"]:
        fail("requests_only \"yes\" accepted: %r" % r)
    prov = Conn(dst)
    prov.json({"op": "subscribe", "id": "s", "port": "capability", "requests_only": True})
    r, _ = prov.until_json(lambda m: m.get("id") == "s")
    if not r.get("ok"):
        fail("subscribe requests_only: %r" % r)
    every = subscribe(dst, "capability")
    c = Conn(src)
    answer = b'{"type":"capability_response","request_id":"r1"}'
    request = b'{"type":"capability_request","malformed":true}'
    c.send(key, "capability", answer, seq=1, ack=True)
    c.send(key, "capability", request, seq=2, ack=True)
    for want in (answer, request):
        kind, _f, _p, data = every.next()
        if kind != "frame" or data != want:
            fail("the plain subscriber got %r, wanted %r" % (data, want))
    kind, _f, _p, data = prov.next()
    if kind != "frame" or data != request:
        fail("the requests_only subscriber got %r first, wanted only the request" % (data,))
    print("requests-only ok")


def noted(src, dst, key_b64):
    key = base64.b64decode(key_b64)
    v2 = subscribe(dst, "capability", frames=2)
    v1 = subscribe(dst, "capability")
    c = Conn(src)
    mx = c.max_data
    req = b'{"type":"capability_request","capability":"noted.test","n":1}'
    shell = b'{"type":"capability_request","capability":"noted.test","pad":"%s"}'
    big = shell % (b"a" * (mx - len(shell) + 2))  # exactly max_frame_data: no room for a note
    c.send(key, "capability", req, seq=1, ack=True)
    c.send(key, "capability", big, seq=2, ack=True)
    c.json({"op": "status", "id": "end"})
    ev = read_events(c, "end")
    if ev != [{"event": "sent", "seq": 1}, {"event": "sent", "seq": 2}]:
        fail("the requests were not taken: %r" % ev)
    notes = []
    for want in (req, big):
        kind, *m = v1.next()
        if kind != "json" or m[0].get("event") != "message" or base64.b64decode(m[0]["data"]) != want \
                or not isinstance(m[0].get("authorized"), dict):
            fail("the frames-1 subscriber did not get a JSON event with the note: %r" % (m[0] if kind == "json" else m[:2],))
        notes.append(m[0]["authorized"])
    note = notes[0]
    if not isinstance(note.get("sequence"), int) or not isinstance(note.get("rule"), str):
        fail("the note is not {sequence, rule}: %r" % note)
    kind, *m = v2.next()
    if kind != "frame" or v2.flags != NOTED:
        fail("the frames-2 subscriber did not get a noted frame: %r flags %r" % (m[:2], v2.flags))
    data = m[2]
    n = struct.unpack_from(">H", data)[0]
    if n > len(data) - 2 or json.loads(data[2 : 2 + n]) != note or data[2 + n :] != req:
        fail("the noted frame is not note length, the note %r, the request: %r" % (note, data[:200]))
    if data[2 : 2 + n] != json.dumps(note, separators=(",", ":")).encode():
        fail("the note is not compact JSON: %r" % data[2 : 2 + n])
    kind, *m = v2.next()
    if kind != "json" or base64.b64decode(m[0].get("data", "")) != big or m[0].get("authorized") != notes[1]:
        fail("a request too big for a noted frame did not come as the JSON event: %r" % (m[0] if kind == "json" else m[:2],))
    print("noted ok")


def refusals_bad_head(src):
    c = Conn(src)
    c.s.sendall(HDR.pack(SEND, 0x80, 1, 0, 8, 1, b"\0" * 32) + b"px")
    kind, m = c.next()
    if kind != "json" or m.get("ok") is not False or m["error"]["code"] != "invalid_request" \
            or "flags" not in m["error"]["message"]:
        fail("bad head: %r" % (m,))
    try:
        c.next()
        fail("the connection stayed open after a bad head")
    except (EOFError, ConnectionResetError):
        pass


def sender_thread(src, key, port, count, size, progress, errors):
    c = Conn(src)
    body = os.urandom(size)
    for i in range(count):
        c.send(key, port, struct.pack(">I", i) + body[4:], seq=i)
        progress[0] = i + 1
    c.json({"op": "status", "id": "end"})
    errors.extend(read_events(c, "end"))
    progress[1] = True


def slow_or_stuck(mode, src, dst, key_b64, count, size):
    key = base64.b64decode(key_b64)
    port = "slow%d" % os.getpid()
    sub = subscribe(dst, port)
    progress, errors = [0, False], []
    t = threading.Thread(target=sender_thread, args=(src, key, port, count, size, progress, errors), daemon=True)
    t.start()
    if mode == "stuck":
        # Never read: the node cuts this subscriber off and the sender finishes.
        t.join(300)
        if t.is_alive() or errors:
            fail("the sender did not finish after the subscriber was cut off: %r" % errors)
        ev = None
        n = 0
        while True:
            kind, *m = sub.next()
            if kind == "json":
                ev = m[0]
                break
            n += 1
        if ev.get("event") != "overflow" or ev.get("dropped", 0) < 1:
            fail("the subscriber cut off was not told: %r" % ev)
        print("stuck ok: %d messages read, then %r" % (n, ev))
        return
    # Slow reader (about 3 MB/s): every message in order.
    for i in range(count):
        kind, *m = sub.next()
        if kind != "frame" or len(m[2]) != size or struct.unpack(">I", m[2][:4])[0] != i:
            fail("message %d: got %r %r" % (i, kind, m[2][:4] if kind == "frame" else m))
        time.sleep(0.02)
    t.join(300)
    if errors:
        fail("the sender got errors: %r" % errors)
    print("slow ok: %d messages of %d bytes in order" % (count, size))


def burst(src, dst, key_b64, count, size):
    """count send frames in one write (the node reads them at once); all must arrive."""
    key = base64.b64decode(key_b64)
    port = "burst%d" % os.getpid()
    sub = subscribe(dst, port)
    c = Conn(src)
    body = os.urandom(size)
    c.s.sendall(b"".join(HDR.pack(SEND, 0, len(port), 0, i, size, key) + port.encode() + body for i in range(count)))
    n = 0
    while n < count:
        kind, *m = sub.next()
        if kind != "frame":
            fail("the subscriber got %r" % (m,))
        n += 1
    print("burst ok")


def unread(src, dst, key_b64, count, size):
    """A frames subscriber's socket holds several batches: what is delivered while it does not
    read goes into the socket at once, not into a queue of the node."""
    key = base64.b64decode(key_b64)
    port = "unread%d" % os.getpid()
    sub = subscribe(dst, port)
    q0, o0 = metric(dst, "api_writes_queued"), metric(dst, "api_frames_out")
    c = Conn(src)
    body = os.urandom(size)
    for i in range(count):
        c.send(key, port, body, seq=i)
    deadline = time.monotonic() + 60
    while metric(dst, "api_frames_out") - o0 < count:
        if time.monotonic() > deadline:
            fail("%d messages were not delivered to the subscriber within 60 s" % count)
        time.sleep(0.05)
    q1 = metric(dst, "api_writes_queued")
    for i in range(count):
        kind, *m = sub.next()
        if kind != "frame" or m[2] != body:
            fail("message %d: got %r" % (i, kind))
    if q1 != q0:
        fail("%d of the writes of %d kB to a subscriber not reading yet were queued in the node "
             "(its socket's send buffer is too small)" % (q1 - q0, count * size // 1000))
    print("unread ok: %d messages of %d bytes went into the socket at once" % (count, size))


def pump(src, dst, key_b64, size, count):
    """Throughput: the reader walks frame heads without copying payloads."""
    key = base64.b64decode(key_b64)
    port = "bench%d" % os.getpid()
    sub = subscribe(dst, port)
    got = {"n": 0, "first": None, "last": None, "other": []}

    def reader():
        sub.s.settimeout(30)
        buf, r, w, n = sub.buf, sub.r, sub.w, 0
        view = memoryview(buf)
        try:
            while n < count:
                while w - r >= HDR.size and buf[r] == MESSAGE:
                    plen, ln = buf[r + 2], int.from_bytes(buf[r + 8 : r + 12], "big")
                    if w - r < HDR.size + plen + ln:
                        break
                    r += HDR.size + plen + ln
                    n += 1
                if w - r and buf[r] != MESSAGE:
                    sub.r, sub.w = r, w
                    kind, m = sub.next()
                    r, w = sub.r, sub.w
                    got["other"].append(m)
                    if m.get("event") == "overflow":
                        break
                    continue
                if n and got["first"] is None:
                    got["first"], got["n0"] = time.monotonic(), n
                got["last"] = time.monotonic()
                got["n"] = n
                if n >= count:
                    break
                if r == w:
                    r = w = 0
                elif len(buf) - w < (1 << 20):
                    buf[: w - r] = buf[r:w]
                    w -= r
                    r = 0
                k = sub.s.recv_into(view[w:])
                if k == 0:
                    break
                w += k
        except (socket.timeout, OSError, EOFError):
            pass
        got["n"] = n

    t = threading.Thread(target=reader)
    t.start()
    c = Conn(src)
    head = HDR.pack(SEND, 0, len(port), 0, 0, size, key) + port.encode()
    body = os.urandom(size)
    total = len(head) + size
    for _ in range(count):
        k = c.s.sendmsg([head, body])
        if k < total:
            c.s.sendall((head + body)[k:])
    c.json({"op": "status", "id": "end"})
    failed = [e for e in read_events(c, "end") if e.get("event") == "send_failed"]
    t.join()
    n = got["n"]
    dt = (got["last"] - got["first"]) if n > 1 and got["first"] else float("nan")
    mbps = (n - got.get("n0", n)) * size / dt / 1e6 if n > 1 and dt > 0 else 0.0
    print("%.1f %d %d %d %.6f" % (mbps, n, count - len(failed), len(failed), time.process_time()))


if __name__ == "__main__":
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    if a[0] == "boundaries":
        boundaries(a[1], a[2], a[3], a[4])
    elif a[0] == "refusals":
        refusals_bad_head(a[1])
        c = Conn(a[1])
        c.send(base64.b64decode(a[2]), "p", b"lost?", seq=7)
        c.json({"op": "status", "id": "end"})
        ev = read_events(c, "end")
        if len(ev) != 1 or ev[0].get("event") != "send_failed" or ev[0].get("seq") != 7 \
                or ev[0]["error"]["code"] != "no_route":
            fail("a send without a route was not reported: %r" % ev)
        print("refusals ok")
    elif a[0] == "noted":
        noted(a[1], a[2], a[3])
    elif a[0] == "requests-only":
        requests_only(a[1], a[2], a[3])
    elif a[0] == "park":
        park(a[1], a[2], a[3])
    elif a[0] in ("slow", "stuck"):
        slow_or_stuck(a[0], a[1], a[2], a[3], int(a[4]), int(a[5]))
    elif a[0] == "burst":
        burst(a[1], a[2], a[3], int(a[4]), int(a[5]))
    elif a[0] == "unread":
        unread(a[1], a[2], a[3], int(a[4]), int(a[5]))
    elif a[0] == "pump":
        pump(a[1], a[2], a[3], int(a[4]), int(a[5]))
    else:
        sys.exit(__doc__)
