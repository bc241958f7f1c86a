"""A mesh agent written with the Python SDK (sdk/python): serves glossary.define, the meaning of
a term of genesis-mesh. Run it against a running node:

    PYTHONPATH=sdk/python python3 examples/python/glossary_agent.py nodes/support

`genesis-mesh dev up` runs it on its support node. The node signs; this program holds no key."""
import sys

import genesis_mesh

GLOSSARY = {
    "genesis": "the block signed offline by the root key that names the network and its Network Authority",
    "na": "the Network Authority: enrolls nodes with one-time invites, signs their certificates and the CRL",
    "crl": "the signed certificate revocation list every node enforces",
    "capability": "a named service (like planner.answer) that requesters ask for without knowing who provides it",
    "provenance": "the chain of steps behind an answer, each signed by the node that did it and checked against "
                  "its certificate and the CRL",
    "discovery": "finding providers of a capability through the NA, then checking each one's signed descriptor "
                 "and certificate locally",
}


def define(inp):
    term = str(inp.get("term") or inp.get("text") or "").strip().lower()
    if not term:
        raise genesis_mesh.ProviderError("invalid_input", "give a term: {\"term\": \"provenance\"}")
    for key, meaning in GLOSSARY.items():
        if key in term.split() or key == term:
            return {"term": key, "meaning": meaning}
    raise genesis_mesh.ProviderError("invalid_input", f"no entry for {term!r} (known: {', '.join(sorted(GLOSSARY))})")


def main():
    node = genesis_mesh.connect(sys.argv[1] if len(sys.argv) > 1 else None)
    node.provide("glossary.define", define, agent_id=sys.argv[2] if len(sys.argv) > 2 else "glossary-py",
                 description="The meaning of a genesis-mesh term (a Python SDK agent)",
                 input_schema={"type": "object", "properties": {"term": {"type": "string"}}, "required": ["term"]})
    print("serving glossary.define", flush=True)
    node.serve()


if __name__ == "__main__":
    main()
