"""The synchronous client: one connection to the node's local API, a reader thread that
routes responses to their callers and requests to handlers (run in a small thread pool)."""
from __future__ import annotations

import inspect
import itertools
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Optional

from ._protocol import (PROTOCOL_VERSION, Answer, ConnectionLost, DeadlineExceeded, MeshError, Request, answer_for,
                        decode, encode, error_from, format_exc, provide_request, socket_path)

log = logging.getLogger("genesis_mesh")
Handler = Callable[..., Any]


def takes_request(handler: Callable) -> bool:
    """Whether handler wants (input, request) rather than (input)."""
    try:
        params = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return False
    pos = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(pos) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


class _Waiter:
    __slots__ = ("event", "resp")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.resp: Optional[dict] = None


class Node:
    """A connection to a running node (``genesis_mesh.connect``). Thread-safe."""

    def __init__(self, where: Optional[str] = None, *, max_workers: int = 8, timeout: float = 10.0):
        self.path = socket_path(where)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(self.path)
            self._sock.settimeout(None)
        except OSError as e:
            self._sock.close()
            raise ConnectionLost("unavailable", f"cannot connect to the node at {self.path}: {e.strerror or e} "
                                                f"(is `genesis-mesh node start` running there?)") from None
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._waiters: Dict[str, _Waiter] = {}
        self._ids = itertools.count(1)
        self._handlers: Dict[str, Handler] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="genesis-mesh-handler")
        self._closed = threading.Event()
        self._lost: Optional[MeshError] = None
        self._closing = False
        self._reader = threading.Thread(target=self._read_loop, name="genesis-mesh-reader", daemon=True)
        self._reader.start()
        try:
            hello = self._call({"op": "hello", "versions": [PROTOCOL_VERSION]}, timeout)
        except BaseException:
            self.close()
            raise
        self.version: int = hello["version"]
        self.node_public_key: str = hello.get("node_public_key", "")
        self.network: str = hello.get("network", "")
        self.limits: dict = hello.get("limits") or {}

    # ---- plumbing ----

    def _send(self, msg: dict) -> None:
        data = encode(msg)
        with self._send_lock:
            if self._lost:
                raise self._lost
            try:
                self._sock.sendall(data)
            except OSError as e:
                raise ConnectionLost("unavailable", f"lost the node at {self.path}: {e.strerror or e}") from None

    def _call(self, msg: dict, timeout: float) -> dict:
        rid = f"py-{next(self._ids)}"
        msg = dict(msg, id=rid)
        w = _Waiter()
        with self._lock:
            if self._lost:
                raise self._lost
            self._waiters[rid] = w
        try:
            self._send(msg)
            if not w.event.wait(timeout):
                raise DeadlineExceeded("deadline_exceeded",
                                       f"the node did not answer {msg['op']} within {timeout:g} s")
        finally:
            with self._lock:
                self._waiters.pop(rid, None)
        resp = w.resp
        if resp is None:
            raise self._lost or ConnectionLost("unavailable", "the connection closed")
        if not resp.get("ok"):
            raise error_from(resp)
        return resp

    def _read_loop(self) -> None:
        buf = b""
        reason = "the node closed the connection"
        try:
            while True:
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        self._dispatch(decode(line))
        except OSError as e:
            reason = f"lost the node: {e.strerror or e}"
        except MeshError as e:
            reason = e.message
        self._fail_all(ConnectionLost("unavailable", f"{reason} ({self.path})"))

    def _fail_all(self, err: MeshError) -> None:
        with self._lock:
            if not self._lost:
                self._lost = err
            waiters = list(self._waiters.values())
        for w in waiters:
            w.event.set()
        self._closed.set()

    def _dispatch(self, m: dict) -> None:
        if "ok" in m:
            with self._lock:
                w = self._waiters.get(str(m.get("id")))
            if w:
                w.resp = m
                w.event.set()
            elif not m.get("ok"):
                log.warning("the node refused %s: %s", m.get("id"), (m.get("error") or {}).get("message"))
            return
        ev = m.get("event")
        if ev == "request":
            self._pool.submit(self._handle, m)
        elif ev == "cancel":
            log.warning("request %s: its deadline passed; the node answered timeout", m.get("request_id"))
        elif ev == "withdrawn":
            log.error("the node withdrew %s: %s", m.get("capability"), m.get("reason"))
            with self._lock:
                self._handlers.pop(m.get("capability"), None)
        elif ev == "overflow":
            log.error("the node dropped %s lines this client did not read", m.get("dropped"))

    def _handle(self, ev: dict) -> None:
        req = Request(ev)
        handler = self._handlers.get(req.capability)
        try:
            if handler is None:
                raise MeshError("unavailable", f"no handler for {req.capability} here")
            result = handler(req.input, req) if takes_request(handler) else handler(req.input)
            msg = answer_for(req.request_id, result, output_max=self.limits.get("output_max", 32768))
        except Exception as e:  # a handler's failure is an error answer, never a dead provider
            log.warning("request %s (%s): %s", req.request_id, req.capability, format_exc(e))
            msg = answer_for(req.request_id, exc=e)
        if "error" in msg:
            log.warning("request %s: answering %s: %s", req.request_id, msg["error"]["code"], msg["error"]["message"])
        try:
            self._call(msg, 15.0)
        except MeshError as e:
            # not_found: past its deadline the node already answered the requester timeout
            log.warning("request %s: the answer was not taken: %s", req.request_id, e)

    # ---- the operations ----

    def provide(self, capability: str, handler: Handler, *, description: Optional[str] = None,
                input_schema: Optional[dict] = None, agent_id: Optional[str] = None, ttl_s: Optional[int] = None,
                timeout: float = 15.0) -> dict:
        """Offer ``capability`` on the mesh, served by ``handler(input)`` or ``handler(input, request)``.
        The node registers the signed descriptor with the NA and keeps it fresh while this
        connection is open. Returns the node's answer (``agent_id``, ``expires_at``)."""
        with self._lock:
            self._handlers[capability.replace(":", ".")] = handler
        try:
            resp = self._call(provide_request(capability, description, input_schema, agent_id, ttl_s), timeout)
        except BaseException:
            with self._lock:
                self._handlers.pop(capability.replace(":", "."), None)
            raise
        with self._lock:
            self._handlers[resp.get("capability", capability)] = handler
        return resp

    def withdraw(self, capability: str, *, timeout: float = 15.0) -> None:
        """Stop offering ``capability``; the node deletes the registration at the NA."""
        self._call({"op": "withdraw", "capability": capability}, timeout)
        with self._lock:
            self._handlers.pop(capability.replace(":", "."), None)

    def ask(self, capability: str, input: Any = None, *, timeout: float = 10.0) -> Answer:
        """Invoke ``capability`` by name alone: the node discovers, checks and selects a provider,
        sends the request, and verifies the answer's provenance. Raises ``MeshError`` subclasses
        with the protocol's codes."""
        deadline_ms = max(1, min(600000, int(timeout * 1000)))
        resp = self._call({"op": "ask", "capability": capability, "input": {} if input is None else input,
                           "deadline_ms": deadline_ms}, timeout + 5.0)
        return Answer(resp)

    def status(self) -> dict:
        return self._call({"op": "status"}, 10.0)

    def serve(self, timeout: Optional[float] = None) -> None:
        """Block while the provided capabilities are served (handlers run in the background from
        ``provide`` on). Returns after ``close()`` or ``timeout``; raises ``ConnectionLost``
        when the node goes away."""
        try:
            self._closed.wait(timeout)
        except KeyboardInterrupt:
            self.close()
            return
        with self._lock:
            lost = self._lost
        if lost and not self._closing:
            raise lost

    def serve_in_background(self) -> threading.Thread:
        """``serve()`` in a daemon thread; returns it."""
        t = threading.Thread(target=self._serve_quietly, name="genesis-mesh-serve", daemon=True)
        t.start()
        return t

    def _serve_quietly(self) -> None:
        try:
            self.serve()
        except MeshError as e:
            log.error("%s", e)

    def close(self) -> None:
        """Close the connection: the node withdraws every capability it provided at once."""
        self._closing = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._closed.set()
        self._pool.shutdown(wait=False)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def connect(where: Optional[str] = None, **kw: Any) -> Node:
    """Connect to the node running in directory ``where`` (or at the socket path ``where``),
    and negotiate local API version 2."""
    return Node(where, **kw)
