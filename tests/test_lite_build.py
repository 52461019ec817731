"""The JupyterLite site builder's parts that need no download (tests/browser/test_lite.py
builds and drives the whole site): dependencies as Pyodide sees them, the lock's closure,
the notebooks' install cell, the MIME types the site is served with, and the command line."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from ipyllm.lite import PyodideLock, serve_in_thread, site_notebook
from ipyllm.lite.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def declared_dependencies() -> list[Requirement]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(line) for line in project["dependencies"]]


def test_compiled_dependencies_are_left_out_in_pyodide_only() -> None:
    pyodide = PyodideLock({"info": {"python": "3.14.2"}, "packages": {}})
    here = {str(r.name) for r in declared_dependencies() if r.marker is None or r.marker.evaluate()}
    there = {str(r.name) for r in declared_dependencies() if pyodide.applies(r)}
    # Compiled (Rust, or pydantic-core beneath): no build for Pyodide on PyPI.
    assert {"nh3", "orjson", "genai-prices"} <= here - there
    assert here - there <= {"nh3", "orjson", "genai-prices", "jiter"}
    assert {"httpx", "ipywidgets", "markdown-it-py", "latex2mathml"} <= there


def test_the_lock_closure_follows_dependencies_by_normalized_name() -> None:
    lock = PyodideLock(
        {
            "info": {"python": "3.14.2"},
            "packages": {
                "ipython": {"version": "9", "file_name": "ipython-9-py3-none-any.whl",
                            "depends": ["prompt_toolkit", "Pygments"]},
                "prompt-toolkit": {"version": "3", "file_name": "p-3-py3-none-any.whl",
                                   "depends": ["wcwidth"]},
                "pygments": {"version": "2", "file_name": "pygments-2-py3-none-any.whl",
                             "depends": []},
                "wcwidth": {"version": "0.6", "file_name": "w-0.6-py3-none-any.whl",
                            "depends": []},
                "numpy": {"version": "2", "file_name": "numpy-2-cp314-pyemscripten_wasm32.whl",
                          "depends": []},
            },
        }
    )  # fmt: skip
    assert lock.closure(["IPython"]) == ["ipython", "prompt-toolkit", "pygments", "wcwidth"]
    assert lock.is_pure("wcwidth") and not lock.is_pure("numpy")
    assert lock.version_of("Prompt_Toolkit") == "3"


def test_site_notebooks_start_by_installing_ipyllm_from_the_site(tmp_path: Path) -> None:
    source = tmp_path / "n.ipynb"
    cells = [{"cell_type": "code", "execution_count": 3, "id": "a", "metadata": {},
              "outputs": [{"output_type": "stream", "name": "stdout", "text": "old"}],
              "source": "%load_ext ipyllm"}]  # fmt: skip
    source.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                  "nbformat_minor": 5}))  # fmt: skip
    notebook = json.loads(site_notebook(source, recordings=False))
    first, second = notebook["cells"]
    assert "%pip install -q ipyllm" in first["source"]
    assert "IPYLLM_REPLAY" not in first["source"]
    assert second["outputs"] == [] and second["execution_count"] is None
    assert notebook["metadata"]["kernelspec"]["name"] == "python"
    replaying = json.loads(site_notebook(source, recordings=True))["cells"][0]["source"]
    assert "%pip install -q ipyllm" in replaying
    assert "recordings.sqlite3" in replaying and "'fallback'" in replaying


def test_the_site_is_served_with_the_types_browsers_insist_on(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "pyodide.mjs").write_text("export {}")
    (tmp_path / "pyodide.asm.wasm").write_bytes(b"\0asm")
    server = serve_in_thread(tmp_path)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        for name, expected in (("pyodide.mjs", "text/javascript"),
                               ("pyodide.asm.wasm", "application/wasm")):  # fmt: skip
            with urllib.request.urlopen(f"{server.url}/{name}") as response:
                assert response.headers["content-type"] == expected
                assert response.headers["cache-control"] == "no-cache"
    finally:
        server.shutdown()
        server.server_close()


def test_serving_a_folder_that_is_no_site_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", str(tmp_path), "--port", "0"]) == 1
    assert "build it with python -m ipyllm.lite build" in capsys.readouterr().err


def test_the_command_line_names_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = capsys.readouterr().out
    assert "build" in shown and "serve" in shown


def test_lite_is_not_imported_by_ipyllm() -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", "import ipyllm, sys; ipyllm.render_markdown('x');"
         " print(any(m.startswith('ipyllm.lite') for m in sys.modules))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "False"
