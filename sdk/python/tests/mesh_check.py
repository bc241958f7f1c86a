"""The Python SDK against real node processes (driven by tests/e2e_sdk_python.sh, which starts
the NA and the nodes). Subcommands:
  provide NODE_DIR READY_FILE      a sync provider of sdk.test (modes: ok, raise, refuse, slow, big)
  provide-aio NODE_DIR READY_FILE  an asyncio provider of sdk.async
  check NODE_DIR PROVIDER_KEY      asks both, asserts every behaviour, prints one PASS line each
  lost NODE_DIR READY GO           connects, waits for GO (the node is stopped meanwhile), asks
Exits non-zero with a FAIL line on the first broken expectation."""
import asyncio
import json
import os
import sys
import time

import genesis_mesh
import genesis_mesh.aio

calls = {"n": 0}


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def handler(inp, req):
    calls["n"] += 1
    mode = inp.get("mode")
    if mode == "raise":
        raise RuntimeError("the handler broke on purpose")
    if mode == "refuse":
        raise genesis_mesh.ProviderError("invalid_input", "mode refuse means no")
    if mode == "slow":
        time.sleep(inp.get("sleep", 4))
        return {"late": True}
    if mode == "big":
        return {"x": "y" * 40000}
    return {"echo": inp, "requester": req.requester, "served": calls["n"]}


def provide(node_dir, ready):
    node = genesis_mesh.connect(node_dir)
    r = node.provide("sdk.test", handler, description="the Python SDK's test provider",
                     input_schema={"type": "object", "properties": {"mode": {"type": "string"}}},
                     agent_id="py-sdk-test")
    with open(ready + ".tmp", "w") as f:
        json.dump(r, f)
    os.rename(ready + ".tmp", ready)
    try:
        node.serve()
    except genesis_mesh.ConnectionLost as e:
        print(f"ConnectionLost: {e.code}: {e.message}", flush=True)
        sys.exit(3)


async def provide_aio(node_dir, ready):
    node = await genesis_mesh.aio.connect(node_dir)

    async def shout(inp):
        await asyncio.sleep(0.01)
        if inp.get("mode") == "raise":
            raise ValueError("async handler broke")
        return {"shout": str(inp.get("text", "")).upper()}

    r = await node.provide("sdk.async", shout, agent_id="py-sdk-async")
    with open(ready + ".tmp", "w") as f:
        json.dump(r, f)
    os.rename(ready + ".tmp", ready)
    await node.serve()


def expect_error(fn, cls, code, provider_code=None, text=None):
    try:
        a = fn()
    except cls as e:
        codes = code if isinstance(code, tuple) else (code,)
        # the node fails over on a provider's "failed"/"too_big" answer: with no other provider
        # the requester gets no_provider naming that last failure
        if e.code not in codes or (provider_code and e.code == "provider_error" and e.provider_code != provider_code) \
                or (text and text not in e.message):
            fail(f"expected {code}/{provider_code}/{text!r}, got {e.code}/{e.provider_code}: {e.message}")
        return e
    fail(f"expected {cls.__name__}, got an answer {a!r}")


def check(node_dir, prov_key):
    node = genesis_mesh.connect(node_dir)
    if node.version != 2:
        fail(f"version {node.version}")
    a = node.ask("sdk.test", {"mode": "ok", "n": 1}, timeout=15)
    if a.output["echo"] != {"mode": "ok", "n": 1} or a.output["requester"] != node.node_public_key:
        fail(f"output {a.output}")
    if a.provider != {"agent_id": "py-sdk-test", "node_public_key": prov_key}:
        fail(f"provider {a.provider}")
    if a.provenance[-1]["signer"] != prov_key or a.provenance[-1]["action"] != "executed" or \
            [c["node_public_key"] for c in a.certificates] != [prov_key]:
        fail(f"provenance {a.provenance} certificates {a.certificates}")
    print("PASS provide + ask by capability alone, provenance signed by the provider's node", flush=True)

    e = expect_error(lambda: node.ask("sdk.test", {"mode": "raise"}, timeout=15), genesis_mesh.MeshError,
                     ("provider_error", "no_provider"), "failed", "RuntimeError: the handler broke on purpose")
    if "py-sdk-test" not in e.message and (e.provider or {}).get("agent_id") != "py-sdk-test":
        fail(f"error answer does not name the provider: {e.message}")
    expect_error(lambda: node.ask("sdk.test", {"mode": "refuse"}, timeout=15), genesis_mesh.ProviderError,
                 "provider_error", "invalid_input", "mode refuse means no")
    a = node.ask("sdk.test", {"mode": "ok"}, timeout=15)
    if a.provider["agent_id"] != "py-sdk-test":
        fail("the provider stopped serving after its handler threw")
    print("PASS a throwing handler is an error answer; the provider keeps serving", flush=True)

    e = expect_error(lambda: node.ask("sdk.test", {"mode": "slow", "sleep": 5}, timeout=2), genesis_mesh.MeshError,
                     ("deadline_exceeded", "provider_error"))
    a = node.ask("sdk.test", {"mode": "ok"}, timeout=15)
    print(f"PASS a handler slower than the deadline: {e.code} ({e.message}); the provider still serves", flush=True)

    expect_error(lambda: node.ask("sdk.test", {"mode": "big"}, timeout=15), genesis_mesh.MeshError,
                 ("provider_error", "no_provider"), "too_big", "over the limit of 32768")
    print("PASS an oversized answer is refused with too_big and a clear message", flush=True)

    expect_error(lambda: node.ask("nobody.serves.this", {}, timeout=5), genesis_mesh.NoProvider, "no_provider")
    try:
        node.provide("Bad Name!", handler)
        fail("a bad capability name was accepted")
    except genesis_mesh.MeshError as e:
        if e.code != "invalid_request":
            fail(f"bad name: {e.code}")
    print("PASS errors as exceptions with the protocol's codes (no_provider, invalid_request)", flush=True)

    async def aio_part():
        an = await genesis_mesh.aio.connect(node_dir)
        a, b = await asyncio.gather(an.ask("sdk.async", {"text": "hi"}, timeout=15),
                                    an.ask("sdk.test", {"mode": "ok", "n": 2}, timeout=15))
        if a.output != {"shout": "HI"} or a.provider["agent_id"] != "py-sdk-async" or b.output["echo"]["n"] != 2:
            fail(f"aio answers {a!r} {b!r}")
        try:
            await an.ask("sdk.async", {"mode": "raise"}, timeout=15)
            fail("async raise answered")
        except genesis_mesh.MeshError as e:
            if "ValueError: async handler broke" not in e.message:
                fail(f"aio error {e.message}")
        a = await an.ask("sdk.async", {"text": "again"}, timeout=15)
        if a.output != {"shout": "AGAIN"}:
            fail("the async provider stopped serving")
        await an.close()
    asyncio.run(aio_part())
    print("PASS asyncio: concurrent asks, an async handler, its error answer", flush=True)
    node.close()


def lost(node_dir, ready, go):
    node = genesis_mesh.connect(node_dir)
    open(ready, "w").write("connected\n")
    for _ in range(600):
        if os.path.exists(go):
            break
        time.sleep(0.1)
    try:
        node.ask("sdk.test", {"mode": "ok"}, timeout=5)
        fail("ask answered with the node gone")
    except genesis_mesh.ConnectionLost as e:
        print(f"PASS the node going away: {e.code}: {e.message}", flush=True)
    try:
        genesis_mesh.connect(node_dir)
        fail("connected to a stopped node")
    except genesis_mesh.ConnectionLost as e:
        print(f"PASS connecting to a stopped node: {e.message}", flush=True)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "provide":
        provide(sys.argv[2], sys.argv[3])
    elif cmd == "provide-aio":
        asyncio.run(provide_aio(sys.argv[2], sys.argv[3]))
    elif cmd == "check":
        check(sys.argv[2], sys.argv[3])
    elif cmd == "lost":
        lost(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        fail(f"unknown subcommand {cmd}")
