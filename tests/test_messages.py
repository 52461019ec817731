"""Every message names what the user chose and says what went wrong in ipyllm's words.

Against the teaching server over loopback, and, where the magic shows a message, in a
real kernel: an unreachable base URL is named as that server (not as "openai"), a 429
says "try again later" once, a 401 advises what works where it happened, a dropped
connection is said in our words (not httpx's), and status lines never say "after 0.0 s".
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import httpx
import pytest

import ipyllm
from ipyllm.client import Stream, normalize_messages, resolve
from ipyllm.errors import (
    AuthenticationError,
    ConnectError,
    RateLimitError,
    StreamError,
    TruncatedError,
)
from ipyllm.render import status_line
from ipyllm.server import ServerThread
from ipyllm.transcript import Transcript

from .kernels import Kernel, running_kernel

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(token_rate=0, first_token_latency=0) as running:
        yield running


async def failure(prompt: str = "Hello?", **options: object) -> StreamError:
    return await failure_of(ipyllm.stream(prompt, **options))  # type: ignore[arg-type]


async def failure_of(answer: Stream) -> StreamError:
    with pytest.raises(StreamError) as caught:
        async for _ in answer:
            pass
    assert answer.transcript.error is caught.value
    return caught.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when this returns: nothing listens


async def test_an_unreachable_base_url_is_named_as_that_server() -> None:
    port = closed_port()
    error = await failure(base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    assert isinstance(error, ConnectError)
    assert str(error) == (
        f"could not reach the server at 127.0.0.1:{port}: the connection was refused "
        "(is the server running, on that port?)"
    )
    assert "openai" not in str(error) and "All connection attempts" not in str(error)


async def test_the_providers_own_service_is_named_by_the_provider() -> None:
    def unresolvable(request: httpx.Request) -> httpx.Response:
        # A host that does not resolve, as httpx reports it (socket.gaierror at the bottom).
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as cause:
            raise httpx.ConnectError("[Errno -2] Name or service not known") from cause

    def refused_otherwise(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("something else")

    where = "could not reach openai at https://api.openai.com"
    for handler, why in ((unresolvable, "the host name does not resolve"),
                         (refused_otherwise, "something else")):  # fmt: skip
        answer = Stream(
            resolve("openai", api_key="sk-test"),
            normalize_messages("Hello?"),
            {},
            transport=httpx.MockTransport(handler),
            max_retries=0,
        )
        error = await failure_of(answer)
        assert isinstance(error, ConnectError)
        assert str(error) == f"{where}: {why}"


async def test_a_429_says_try_again_later_once(server: ServerThread) -> None:
    base = f"{server.url}/with/status=429/v1"
    error = await failure(base_url=base, max_retries=0)
    assert isinstance(error, RateLimitError)
    host = server.url.removeprefix("http://")
    assert str(error).startswith(f"the server at {host} is rate limiting requests (HTTP 429")
    assert len(re.findall("try again later", str(error), re.IGNORECASE)) == 1, str(error)
    # With a retry-after, the wait is said instead (and retries are not this test's affair;
    # a short one: every stream to this server waits it out).
    error = await failure(
        base_url=f"{server.url}/with/status=429,retry_after=0.5/v1", max_retries=0
    )
    assert str(error).endswith("Retry after 0.5 s.")
    assert len(re.findall("try again later", str(error), re.IGNORECASE)) <= 1


async def test_a_401_names_the_variable_and_not_where_to_set_it(server: ServerThread) -> None:
    error = await failure(
        provider="anthropic", base_url=f"{server.url}/with/status=401", max_retries=0
    )
    assert isinstance(error, AuthenticationError)
    host = server.url.removeprefix("http://")
    assert str(error).startswith(f"the server at {host} refused the request (HTTP 401")
    assert str(error).endswith("Check the API key (ANTHROPIC_API_KEY).")
    assert "api_key=" not in str(error)  # where to set it depends on where it was asked


async def test_a_dropped_connection_is_said_in_our_words(server: ServerThread) -> None:
    error = await failure(
        "Tell me a long story.", base_url=f"{server.url}/with/drop_after=30/v1", max_retries=0
    )
    assert isinstance(error, TruncatedError)
    text = len(error.transcript.text) if error.transcript else -1
    host = server.url.removeprefix("http://")
    assert str(error) == (
        f"the connection to the server at {host} closed before the answer was complete, "
        f"after {text} characters"
    )
    assert text > 0 and "peer closed" not in str(error)


def test_status_lines_say_no_time_under_a_twentieth_of_a_second() -> None:
    transcript = Transcript(provider="openai", model="demo")
    transcript.start()
    transcript.end("error", StreamError("boom"))
    assert transcript.elapsed is not None and transcript.elapsed < 0.05
    line = status_line(transcript)
    assert "failed" in line and " s" not in line.split("failed", 1)[1].split("·")[0]
    assert "0.0 s" not in line
    transcript.started_at = (transcript.ended_at or 0) - 1.25  # a real duration is said
    assert "failed after 1.2 s" in status_line(transcript) or "failed after 1.3 s" in (
        status_line(transcript)
    )


# --- in a kernel: the magic adds its own advice ---------------------------------------------


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with running_kernel("python3", JPY_SESSION_NAME="messages.ipynb") as running:
        yield running


def test_the_magic_says_where_a_key_goes_in_a_notebook(
    kernel: Kernel, server: ServerThread
) -> None:
    reply = kernel.run(
        f"%%chat -p anthropic --base-url {server.url}/with/status=401 --wait --no-history\nHi"
    )
    (display_id,) = kernel.display_ids(reply)
    final = kernel.final_display(display_id)["content"]
    plain, html = final["data"]["text/plain"], final["data"]["text/html"]
    assert final["metadata"]["ipyllm"]["status"] == "error"
    advice = "Set ANTHROPIC_API_KEY in the environment the kernel started from"
    assert advice in plain and advice in html
    assert "api_key=" not in plain and "%config" not in plain
    # The advice follows the error, in the same (red) block.
    assert re.search(r'class="ipyllm-error">Error: [^<]*HTTP 401[^<]*\n' + advice, html), html


def test_the_magic_names_an_unreachable_server_and_suggests_a_mistyped_option(
    kernel: Kernel,
) -> None:
    port = closed_port()
    reply = kernel.run(
        f"%%chat --base-url http://127.0.0.1:{port}/v1 --wait --no-history --param x=1\nHi"
    )
    (display_id,) = kernel.display_ids(reply)
    plain = kernel.final_display(display_id)["content"]["data"]["text/plain"]
    assert f"could not reach the server at 127.0.0.1:{port}" in plain
    assert "Set " not in plain  # no key advice for what is not a key problem
    reply, _ = kernel.execute("%%chat --temprature 0\nHi")
    assert "did you mean --temperature?" in reply["content"]["evalue"]


def test_the_magic_says_where_a_missing_key_goes(kernel: Kernel) -> None:
    # No key in the environment (conftest removes them): the provider's own service.
    reply, _ = kernel.execute("%%chat -p anthropic --no-history\nHi")
    message = reply["content"]["evalue"]
    assert reply["content"]["ename"] == "UsageError"
    assert message.startswith("no API key for anthropic: set ANTHROPIC_API_KEY in the environment")
    assert "api_key=" not in message
