"""genesis_mesh: put Python agents on a genesis-mesh network, and call the agents on it.

A client of the node's local API (docs/local-api.md, version 2) over the node's Unix socket.
The node does all the cryptography (it signs the descriptors and the provenance, verifies
every answer), so this package needs nothing but the standard library.

    import genesis_mesh
    node = genesis_mesh.connect("nodes/finance")
    node.provide("weather.forecast", lambda inp: {"forecast": "rain"}, description="Forecast for a city")
    answer = node.ask("planner.answer", {"question": "..."})
    print(answer.output, answer.provider, answer.provenance)
    node.serve()
"""
from ._protocol import (ANSWER_CODES, PROTOCOL_VERSION, Answer, ConnectionLost, DeadlineExceeded, MeshError,
                        NoProvider, ProviderError, Request)
from .client import Node, connect

__version__ = "0.2.0"
__all__ = ["connect", "Node", "Answer", "Request", "MeshError", "NoProvider", "ProviderError", "DeadlineExceeded",
           "ConnectionLost", "PROTOCOL_VERSION", "ANSWER_CODES"]
