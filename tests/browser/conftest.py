"""Fixtures for real-browser tests: one Jupyter server and one chromium per session, a fresh
sentinel page per test, and notebooks opened in JupyterLab 4 or Notebook 7.

The Playwright fixtures are async on pytest-asyncio's session loop, so a browser test module
has ``async def`` tests and
``pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]``."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, cast

import pytest
import pytest_asyncio

from tests.browser.harness import (
    FRONTENDS,
    Frontend,
    JupyterServer,
    NotebookPage,
    OpenNotebook,
    browser_unavailable_reason,
    install_sentinel,
    launch_chromium,
    running_jupyter_server,
    write_notebook,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives JupyterLab / Notebook 7 in headless chromium (Playwright)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # In CI the browser tests must run: there a missing browser fails them (in the fixture).
    reason = browser_unavailable_reason()
    if reason is None or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason=f"browser tests cannot run: {reason}")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    with running_jupyter_server(tmp_path_factory.mktemp("jupyter")) as server:
        yield server


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    reason = browser_unavailable_reason()
    if reason is not None:
        pytest.fail(f"browser tests cannot run: {reason}")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        yield chromium
        await chromium.close()


@pytest.fixture(params=FRONTENDS)
def frontend(request: pytest.FixtureRequest) -> Frontend:
    return cast(Frontend, request.param)


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a fresh browser context, with the hostile-output sentinel installed."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    new_page = await context.new_page()
    await install_sentinel(new_page)
    yield new_page
    await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def open_notebook(
    page: Page, jupyter_server: JupyterServer, frontend: Frontend, request: pytest.FixtureRequest
) -> AsyncIterator[OpenNotebook]:
    """``await open_notebook(sources)``: write a notebook of those code cells, named after the
    test, open it in ``frontend`` and wait for an idle kernel. Its kernel is shut down after."""

    async def open_(sources: list[str]) -> NotebookPage:
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-") + ".ipynb"
        write_notebook(jupyter_server.root_dir / name, sources)
        notebook = NotebookPage(page, jupyter_server, frontend, name)
        await notebook.open()
        return notebook

    yield open_
    await asyncio.to_thread(jupyter_server.shutdown_sessions)
