"""The embedded demo model: the teaching server's demo, answered in-process, no network.

It speaks the OpenAI chat format through an httpx transport, so its answers go
through exactly the same decoding path as a real provider's. The teaching server
is an application of its own: it is imported only when a demo answer is asked for.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import httpx

from .openai import OpenAIChat

if TYPE_CHECKING:
    from ..server import TeachingApp

DEMO_HOST = "demo.ipyllm.invalid"


@functools.cache
def _shared_app() -> TeachingApp:
    from ..server import TeachingApp  # the one lazy import of the server (see the docstring)

    return TeachingApp()


class Demo(OpenAIChat):
    name = "demo"
    api_key_env = None
    base_url_env = None
    # Teaching-server options work here too: http://demo.ipyllm.invalid/with/rate=200/v1
    default_base_url = f"http://{DEMO_HOST}/v1"
    default_model = "demo"

    def transport(self, base_url: str) -> httpx.AsyncBaseTransport | None:
        if httpx.URL(base_url).host != DEMO_HOST:
            return None  # pointed at a real teaching server: use the network
        from ..server import DemoTransport

        # A transport per stream (the client closes it), one app (and log) per process.
        return DemoTransport(_shared_app())
