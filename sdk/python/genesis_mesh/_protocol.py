"""What the sync and asyncio clients share: the local API's framing, errors and results
(docs/local-api.md, protocol version 2). No cryptography: the node signs and verifies."""
from __future__ import annotations

import json
import os
import stat
import traceback
from typing import Any, Dict, List, Optional

PROTOCOL_VERSION = 2
MAX_LINE = 262144
#: error codes a handler may answer with (anything else becomes "failed" at the node)
ANSWER_CODES = ("invalid_input", "failed", "timeout", "unavailable", "too_big")


class MeshError(Exception):
    """An error of the local API. ``code`` is one of the protocol's fixed codes
    (``no_provider``, ``provider_error``, ``deadline_exceeded``, ``unavailable``, ...)."""

    def __init__(self, code: str, message: str, *, provider_code: Optional[str] = None,
                 provider: Optional[dict] = None, provenance: Optional[list] = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.provider_code = provider_code
        self.provider = provider
        self.provenance = provenance


class NoProvider(MeshError):
    """``ask``: no usable provider for the capability."""


class ProviderError(MeshError):
    """``ask``: the provider answered an error (``provider_code`` holds its code). A handler may
    also raise it to choose the code of its error answer: ``raise ProviderError("invalid_input", "city missing")``."""

    def __init__(self, code: str, message: str, **kw: Any):
        if code in ANSWER_CODES and "provider_code" not in kw:
            # raised by a handler: code is the answer's code
            super().__init__("provider_error", message, provider_code=code)
        else:
            super().__init__(code, message, **kw)


class DeadlineExceeded(MeshError):
    """The request's deadline passed before it completed."""


class ConnectionLost(MeshError):
    """The node closed the connection (it stopped, or it is not running)."""


_BY_CODE = {"no_provider": NoProvider, "provider_error": ProviderError, "deadline_exceeded": DeadlineExceeded}


def error_from(resp: dict) -> MeshError:
    """The exception for a ``{"ok":false,...}`` response."""
    e = resp.get("error") or {}
    code = e.get("code") or "internal"
    msg = e.get("message") or "(no message)"
    cls = _BY_CODE.get(code, MeshError)
    return cls(code, msg, provider_code=e.get("provider_code"), provider=resp.get("provider"),
               provenance=resp.get("provenance"))


class Answer:
    """A verified answer of ``ask``: the node checked every provenance step's signature and
    every signer's certificate before returning it."""

    __slots__ = ("output", "provider", "provenance", "certificates", "raw")

    def __init__(self, resp: dict):
        self.output: Any = resp.get("output")
        self.provider: Dict[str, str] = resp.get("provider") or {}
        self.provenance: List[dict] = resp.get("provenance") or []
        self.certificates: List[dict] = resp.get("certificates") or []
        self.raw = resp

    def __repr__(self) -> str:
        return f"Answer(provider={self.provider.get('agent_id')!r}, output={self.output!r})"


class Request:
    """A capability request delivered to a handler (its second argument, when it takes two)."""

    __slots__ = ("request_id", "capability", "input", "requester", "deadline", "deadline_ms", "authorized")

    def __init__(self, ev: dict):
        self.request_id: str = ev.get("request_id", "")
        self.capability: str = ev.get("capability", "")
        self.input: Any = ev.get("input")
        self.requester: str = ev.get("requester", "")
        self.deadline: str = ev.get("deadline", "")
        self.deadline_ms: int = int(ev.get("deadline_ms") or 0)
        self.authorized: Optional[str] = ev.get("authorized")


def socket_path(where: Optional[str]) -> str:
    """A node directory (its ``node.sock``) or the socket's own path; default ``$GM_DIR`` or ``.``."""
    where = where or os.environ.get("GM_DIR") or "."
    try:
        st = os.stat(where)
    except OSError as e:
        raise ConnectionLost("unavailable", f"no node directory or socket at {where}: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        return os.path.join(where, "node.sock")
    return where


def encode(msg: dict) -> bytes:
    line = json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(line) > MAX_LINE:
        raise MeshError("too_big", f"the request is {len(line)} bytes, over the local API's line limit of {MAX_LINE}")
    return line + b"\n"


def decode(line: bytes) -> dict:
    try:
        m = json.loads(line)
    except ValueError as e:
        raise MeshError("internal", f"the node sent a line that is not JSON: {e}") from None
    if not isinstance(m, dict):
        raise MeshError("internal", "the node sent a line that is not a JSON object")
    return m


def answer_for(request_id: str, result: Any = None, exc: Optional[BaseException] = None,
               output_max: int = 32768, detail: Optional[str] = None) -> dict:
    """The ``answer`` operation for a handler's result or exception (without ``id``)."""
    msg: dict = {"op": "answer", "request_id": request_id}
    if exc is None:
        size = len(json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        if size > output_max:
            exc = ProviderError("too_big", f"the handler's output is {size} bytes, over the limit of {output_max}")
    if exc is None:
        msg["output"] = result
        if detail:
            msg["detail"] = detail[:512]
        return msg
    if isinstance(exc, MeshError) and exc.provider_code in ANSWER_CODES:
        code, text = exc.provider_code, exc.message
    elif isinstance(exc, MeshError) and exc.code in ANSWER_CODES:
        code, text = exc.code, exc.message
    elif isinstance(exc, TimeoutError):
        code, text = "timeout", f"{type(exc).__name__}: {exc}"
    else:
        code, text = "failed", f"the handler raised {type(exc).__name__}: {exc}"
    msg["error"] = {"code": code, "message": text.encode("utf-8")[:500].decode("utf-8", "ignore")}
    return msg


def format_exc(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()


def provide_request(capability: str, description: Optional[str], input_schema: Optional[dict],
                    agent_id: Optional[str], ttl_s: Optional[int]) -> dict:
    req: dict = {"op": "provide", "capability": capability}
    if description is not None:
        req["description"] = description
    if input_schema is not None:
        req["input_schema"] = input_schema
    if agent_id is not None:
        req["agent_id"] = agent_id
    if ttl_s is not None:
        req["ttl_s"] = ttl_s
    return req
