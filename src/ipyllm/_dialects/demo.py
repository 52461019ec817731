"""The embedded demo model: the teaching server's demo, answered in-process, no network.

It speaks the OpenAI chat format through an httpx transport, so its answers go
through exactly the same decoding path as a real provider's.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from ..server import TeachingApp

from .openai import OpenAIChat


@functools.cache
def _shared_app() -> TeachingApp:
    from ..server import TeachingApp  # imported late: only the demo needs the server code

    return TeachingApp()


class Demo(OpenAIChat):
    name = "demo"
    api_key_env = None
    base_url_env = None
    default_base_url = "http://demo.ipyllm.invalid/v1"
    default_model = "demo"

    def transport(self, base_url: str) -> httpx.AsyncBaseTransport | None:
        if base_url != self.default_base_url:
            return None  # pointed at a real teaching server: use the network
        from ..server import DemoTransport

        # A transport per stream (the client closes it), one app (and log) per process.
        return DemoTransport(_shared_app())
