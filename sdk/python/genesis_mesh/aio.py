"""The asyncio client: the same operations as ``genesis_mesh.Node``, as coroutines.

    node = await genesis_mesh.aio.connect("nodes/finance")
    await node.provide("weather.forecast", handler)   # handler may be async or plain
    answer = await node.ask("planner.answer", {"question": "..."})
"""
from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any, Callable, Dict, Optional, Set

from ._protocol import (MAX_LINE, PROTOCOL_VERSION, Answer, ConnectionLost, DeadlineExceeded, MeshError, Request,
                        answer_for, decode, encode, error_from, format_exc, provide_request, socket_path)
from .client import takes_request

log = logging.getLogger("genesis_mesh")


class AsyncNode:
    """A connection to a running node, for asyncio programs (``await genesis_mesh.aio.connect(...)``)."""

    def __init__(self, path: str):
        self.path = path
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self._waiters: Dict[str, asyncio.Future] = {}
        self._handlers: Dict[str, Callable[..., Any]] = {}
        self._tasks: Set[asyncio.Task] = set()
        self._ids = itertools.count(1)
        self._lost: Optional[MeshError] = None
        self._closing = False
        self._closed: Optional[asyncio.Event] = None
        self.version = 0
        self.node_public_key = ""
        self.network = ""
        self.limits: dict = {}

    async def _open(self, timeout: float) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.path, limit=MAX_LINE + 2), timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise ConnectionLost("unavailable", f"cannot connect to the node at {self.path}: "
                                                f"{getattr(e, 'strerror', None) or e or 'timeout'} "
                                                f"(is `genesis-mesh node start` running there?)") from None
        self._closed = asyncio.Event()
        self._spawn(self._read_loop())
        try:
            hello = await self._call({"op": "hello", "versions": [PROTOCOL_VERSION]}, timeout)
        except BaseException:
            await self.close()
            raise
        self.version = hello["version"]
        self.node_public_key = hello.get("node_public_key", "")
        self.network = hello.get("network", "")
        self.limits = hello.get("limits") or {}

    def _spawn(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _call(self, msg: dict, timeout: float) -> dict:
        if self._lost:
            raise self._lost
        rid = f"aio-{next(self._ids)}"
        fut = asyncio.get_running_loop().create_future()
        self._waiters[rid] = fut
        try:
            assert self._writer is not None
            self._writer.write(encode(dict(msg, id=rid)))
            try:
                await self._writer.drain()
                resp = await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                raise DeadlineExceeded("deadline_exceeded",
                                       f"the node did not answer {msg['op']} within {timeout:g} s") from None
            except OSError as e:
                raise ConnectionLost("unavailable", f"lost the node at {self.path}: {e.strerror or e}") from None
        finally:
            self._waiters.pop(rid, None)
        if not resp.get("ok"):
            raise error_from(resp)
        return resp

    async def _read_loop(self) -> None:
        reason = "the node closed the connection"
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                if line.strip():
                    self._dispatch(decode(line))
        except (OSError, ValueError) as e:  # ValueError: a line over the limit
            reason = f"lost the node: {e}"
        except MeshError as e:
            reason = e.message
        self._lost = self._lost or ConnectionLost("unavailable", f"{reason} ({self.path})")
        for f in self._waiters.values():
            if not f.done():
                f.set_exception(self._lost)
        assert self._closed is not None
        self._closed.set()

    def _dispatch(self, m: dict) -> None:
        if "ok" in m:
            f = self._waiters.get(str(m.get("id")))
            if f and not f.done():
                f.set_result(m)
            elif not m.get("ok"):
                log.warning("the node refused %s: %s", m.get("id"), (m.get("error") or {}).get("message"))
            return
        ev = m.get("event")
        if ev == "request":
            self._spawn(self._handle(m))
        elif ev == "cancel":
            log.warning("request %s: its deadline passed; the node answered timeout", m.get("request_id"))
        elif ev == "withdrawn":
            log.error("the node withdrew %s: %s", m.get("capability"), m.get("reason"))
            self._handlers.pop(m.get("capability"), None)

    async def _handle(self, ev: dict) -> None:
        req = Request(ev)
        handler = self._handlers.get(req.capability)
        try:
            if handler is None:
                raise MeshError("unavailable", f"no handler for {req.capability} here")
            args = (req.input, req) if takes_request(handler) else (req.input,)
            if asyncio.iscoroutinefunction(handler):
                result = await handler(*args)
            else:
                result = await asyncio.get_running_loop().run_in_executor(None, lambda: handler(*args))
            msg = answer_for(req.request_id, result, output_max=self.limits.get("output_max", 32768))
        except Exception as e:  # a handler's failure is an error answer, never a dead provider
            log.warning("request %s (%s): %s", req.request_id, req.capability, format_exc(e))
            msg = answer_for(req.request_id, exc=e)
        try:
            await self._call(msg, 15.0)
        except MeshError as e:
            log.warning("request %s: the answer was not taken: %s", req.request_id, e)

    async def provide(self, capability: str, handler: Callable[..., Any], *, description: Optional[str] = None,
                      input_schema: Optional[dict] = None, agent_id: Optional[str] = None,
                      ttl_s: Optional[int] = None, timeout: float = 15.0) -> dict:
        """As ``Node.provide``; ``handler`` may be a coroutine function."""
        key = capability.replace(":", ".")
        self._handlers[key] = handler
        try:
            resp = await self._call(provide_request(capability, description, input_schema, agent_id, ttl_s), timeout)
        except BaseException:
            self._handlers.pop(key, None)
            raise
        self._handlers[resp.get("capability", key)] = handler
        return resp

    async def withdraw(self, capability: str, *, timeout: float = 15.0) -> None:
        await self._call({"op": "withdraw", "capability": capability}, timeout)
        self._handlers.pop(capability.replace(":", "."), None)

    async def ask(self, capability: str, input: Any = None, *, timeout: float = 10.0) -> Answer:
        """As ``Node.ask``."""
        deadline_ms = max(1, min(600000, int(timeout * 1000)))
        resp = await self._call({"op": "ask", "capability": capability, "input": {} if input is None else input,
                                 "deadline_ms": deadline_ms}, timeout + 5.0)
        return Answer(resp)

    async def status(self) -> dict:
        return await self._call({"op": "status"}, 10.0)

    async def serve(self) -> None:
        """Wait while the provided capabilities are served; raises ``ConnectionLost`` when the node
        goes away, returns after ``close()``."""
        assert self._closed is not None
        await self._closed.wait()
        if self._lost and not self._closing:
            raise self._lost

    async def close(self) -> None:
        self._closing = True
        if self._writer:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        if self._closed:
            self._closed.set()

    async def __aenter__(self) -> "AsyncNode":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


async def connect(where: Optional[str] = None, *, timeout: float = 10.0) -> AsyncNode:
    """Connect to the node at ``where`` (a node directory or its socket) and negotiate version 2."""
    node = AsyncNode(socket_path(where))
    await node._open(timeout)
    return node
