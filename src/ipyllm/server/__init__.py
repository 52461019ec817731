"""A local teaching server that imitates LLM providers' streaming APIs, faults included.

``TeachingApp`` is the sans-socket core; ``TeachingServer`` and ``ServerThread`` serve it
over loopback HTTP; ``DemoTransport`` plugs it into an ``httpx.AsyncClient`` directly.
Run ``python -m ipyllm.server`` and read ``GET /`` for the routes and URL options.
"""

from ipyllm.server._app import TeachingApp
from ipyllm.server._demo import DEMO_MODELS, demo_answer, demo_reasoning, demo_tokens
from ipyllm.server._http import ServerThread, TeachingServer
from ipyllm.server._responses import DropConnection
from ipyllm.server._transport import DemoTransport

__all__ = [
    "DEMO_MODELS",
    "DemoTransport",
    "DropConnection",
    "ServerThread",
    "TeachingApp",
    "TeachingServer",
    "demo_answer",
    "demo_reasoning",
    "demo_tokens",
]
