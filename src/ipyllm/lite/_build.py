"""``python -m ipyllm.lite build OUTDIR``: a static JupyterLite site with ipyllm, offline.

The site is jupyterlite-core's JupyterLab and Notebook apps, the Pyodide kernel
(jupyterlite-pyodide-kernel) on a local Pyodide distribution (see ``_pyodide``), ipyllm's
wheel and its pure-Python dependencies as the site's piplite index (see ``_wheels``), with
``disablePyPIFallback`` so nothing is ever fetched from elsewhere, and ipyllm's notebooks,
each opened by a cell that installs ipyllm from the site. Downloads are cached (in
``~/.cache/ipyllm-lite`` or ``IPYLLM_LITE_CACHE``), and a site whose inputs have not changed
(ipyllm's wheel, the notebooks, the recordings, the tools' versions) is not built again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ._pyodide import (
    KERNEL_PACKAGES,
    BuildError,
    Log,
    PyodideLock,
    distribution,
    npm_core,
    sha256_of,
)
from ._wheels import ipyllm_wheel, piplite_wheels, source_checkout

#: Bumped when what the builder writes changes, so old sites are rebuilt.
BUILDER_VERSION = 3
STAMP = "ipyllm-lite.json"
NOTEBOOKS = ("quickstart.ipynb", "teaching-streaming.ipynb")
RECORDINGS = "recordings.sqlite3"
KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"


def default_cache() -> Path:
    """Where downloads and built wheels are kept: ``IPYLLM_LITE_CACHE``, else
    ``~/.cache/ipyllm-lite`` (under ``XDG_CACHE_HOME`` when that is set)."""
    configured = os.environ.get("IPYLLM_LITE_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ipyllm-lite"


def _tool_versions() -> dict[str, str]:
    versions = {}
    for name in ("jupyterlite-core", "jupyterlite-pyodide-kernel"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            raise BuildError(
                f"{name} is not installed: pip install 'ipyllm[lite]' installs the site tools"
            ) from None
    return versions


def pyodide_version() -> str:
    """The Pyodide release the installed jupyterlite-pyodide-kernel expects."""
    from jupyterlite_pyodide_kernel.constants import (  # type: ignore[import-untyped]
        PYODIDE_VERSION,
    )

    return str(PYODIDE_VERSION)


def notebook_sources() -> list[Path]:
    """ipyllm's notebooks: from the checkout's ``notebooks/`` folder."""
    root = source_checkout()
    if root is None:
        raise BuildError("the notebooks come from an ipyllm checkout; run this from one")
    found = [root / "notebooks" / name for name in NOTEBOOKS]
    missing = [str(path) for path in found if not path.exists()]
    if missing:
        raise BuildError(f"notebooks not found: {', '.join(missing)}")
    return found


def install_cell(recordings: bool) -> dict[str, Any]:
    """The cell put first in each notebook of the site: ipyllm from the site's own index."""
    lines = [
        "# In JupyterLite: install ipyllm from this site (nothing is fetched from elsewhere)",
        "%pip install -q ipyllm",
        "import os, shutil",
        "# The conversation log lives in the browser's memory (SQLite cannot use this drive)",
        "_ = os.environ.setdefault('IPYLLM_STORE', '/tmp/ipyllm/store.sqlite3')",
    ]
    if recordings:
        lines += [
            "# Answer from the answers recorded into this site when the prompt matches one",
            "os.makedirs('/tmp/ipyllm', exist_ok=True)",
            f"shutil.copy({RECORDINGS!r}, '/tmp/ipyllm/store.sqlite3')",
            "os.environ['IPYLLM_REPLAY'] = 'fallback'",
        ]
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": "ipyllm-lite-install",
        "metadata": {},
        "outputs": [],
        "source": "\n".join(lines),
    }


def site_notebook(path: Path, recordings: bool) -> str:
    """The notebook at ``path`` as the site holds it (its JSON): outputs cleared, the Pyodide
    kernel named, and first a cell that installs ipyllm from the site (and, with
    ``recordings``, answers from the recordings put in the site)."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    notebook["cells"].insert(0, install_cell(recordings))
    notebook.setdefault("metadata", {})["kernelspec"] = {
        "display_name": "Python (Pyodide)",
        "language": "python",
        "name": "python",
    }
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def fingerprint(
    wheel: Path, notebooks: list[Path], replay: Path | None, contents: Sequence[Path]
) -> dict[str, Any]:
    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    return {
        "builder": BUILDER_VERSION,
        "pyodide": pyodide_version(),
        "tools": _tool_versions(),
        "ipyllm_wheel": sha256_of(wheel),
        "notebooks": {path.name: digest(path) for path in notebooks},
        "recordings": None if replay is None else digest(replay),
        "contents": {str(path): digest(path) for path in contents},
    }


def build(
    outdir: Path,
    *,
    cache: Path | None = None,
    replay: Path | None = None,
    wheel: Path | None = None,
    contents: Sequence[Path] = (),
    force: bool = False,
    log: Log = print,
) -> Path:
    """Build the site into ``outdir`` (replaced whole); skip it when nothing changed.

    ``replay`` is a recordings file (``.ipyllm/store.sqlite3``) to answer from; ``wheel``
    an ipyllm wheel to put in the site instead of one built from this checkout; ``contents``
    more files for the site (notebooks get the install cell too).
    """
    started = time.monotonic()
    outdir = Path(outdir).resolve()
    cache = (cache or default_cache()).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    if replay is not None and not replay.exists():
        raise BuildError(f"no recordings at {replay}")
    contents = [Path(path).resolve() for path in contents]
    missing = [str(path) for path in contents if not path.is_file()]
    if missing:
        raise BuildError(f"not files: {', '.join(missing)}")
    _tool_versions()
    log("ipyllm's wheel")
    if wheel is None:
        wheel = ipyllm_wheel(cache / "ipyllm-wheel", log)
    elif not wheel.name.startswith("ipyllm-") or not wheel.exists():
        raise BuildError(f"not an ipyllm wheel: {wheel}")
    notebooks = notebook_sources()
    wanted = fingerprint(wheel, notebooks, replay, contents)
    stamp = outdir / STAMP
    if not force and stamp.exists():
        try:
            if json.loads(stamp.read_text(encoding="utf-8")) == wanted:
                log(f"{outdir} is up to date")
                return outdir
        except ValueError:
            pass

    version = pyodide_version()
    # Everything of this build in folders of its own: builds may run at once (test runs).
    stage = Path(tempfile.mkdtemp(prefix="stage-", dir=cache))
    try:
        _build_in(stage, outdir, version, wheel, notebooks, contents, replay, wanted, cache, log)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log(f"built {outdir} in {time.monotonic() - started:.0f} s")
    return outdir


def _build_in(
    stage: Path,
    outdir: Path,
    version: str,
    wheel: Path,
    notebooks: list[Path],
    contents: Sequence[Path],
    replay: Path | None,
    wanted: dict[str, Any],
    cache: Path,
    log: Log,
) -> None:
    (stage / "files").mkdir(parents=True)
    log(f"Pyodide {version}: the core from npm, packages from PyPI")
    core = npm_core(version, cache, log)
    full_lock = PyodideLock(json.loads((core / "pyodide-lock.json").read_text(encoding="utf-8")))
    log("ipyllm's dependencies beyond Pyodide's lock")
    wheels, from_lock = piplite_wheels(wheel, full_lock, cache, stage / "pypi", log)
    for found in wheels:
        log(f"  piplite: {found.name}")
    log("the Pyodide distribution")
    _, lock = distribution(
        version, cache, [*KERNEL_PACKAGES, *from_lock], stage / "static" / "pyodide", log
    )
    lost = sorted(name for name in from_lock if name not in lock.packages)
    if lost:
        raise BuildError(f"ipyllm needs {lost}, which the Pyodide distribution cannot serve")

    for path in [*notebooks, *contents]:
        target = stage / "files" / path.name
        if path.suffix == ".ipynb":
            target.write_text(site_notebook(path, replay is not None), encoding="utf-8")
        else:
            shutil.copy2(path, target)
    if replay is not None:
        shutil.copy2(replay, stage / "files" / RECORDINGS)
    settings = {KERNEL_PLUGIN: {"disablePyPIFallback": True}}
    # The recordings are read as bytes through the browser's drive: say they are binary.
    sqlite = {
        "name": "sqlite3",
        "extensions": [".sqlite3"],
        "mimeTypes": ["application/vnd.sqlite3"],
        "fileFormat": "base64",
    }
    lite_json = {
        "jupyter-lite-schema-version": 0,
        "jupyter-config-data": {
            "appName": "ipyllm",
            "litePluginSettings": settings,
            "fileTypes": {"sqlite3": sqlite},
        },
    }
    (stage / "jupyter-lite.json").write_text(json.dumps(lite_json, indent=1), encoding="utf-8")

    outdir.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{outdir.name}.partial-", dir=outdir.parent))
    partial.rmdir()  # jupyter lite build makes it
    log("jupyter lite build")
    command = [
        sys.executable, "-m", "jupyterlite_core", "build", "--lite-dir", str(stage),
        "--output-dir", str(partial), "--contents", str(stage / "files"), "--no-sourcemaps",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=stage, capture_output=True, text=True)
    try:
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            raise BuildError(f"jupyter lite build failed:\n{output[-4000:]}")
        _check_site(partial)
        (partial / STAMP).write_text(json.dumps(wanted, indent=1), encoding="utf-8")
        _replace(outdir, partial)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _replace(outdir: Path, new: Path) -> None:
    """Put ``new`` where ``outdir`` is, the old one moved aside first (renames, not copies)."""
    old = outdir.with_name(f"{outdir.name}.old-{os.getpid()}")
    if outdir.exists():
        outdir.rename(old)
    with contextlib.suppress(OSError):  # another build put its site there meanwhile
        new.rename(outdir)
    shutil.rmtree(old, ignore_errors=True)


def _check_site(site: Path) -> None:
    """The site must load Pyodide locally and never fall back to PyPI."""
    config = json.loads((site / "jupyter-lite.json").read_text(encoding="utf-8"))
    settings = config["jupyter-config-data"]["litePluginSettings"][KERNEL_PLUGIN]
    if not str(settings.get("pyodideUrl", "")).startswith("./"):
        raise BuildError(f"the site would load Pyodide from {settings.get('pyodideUrl')!r}")
    if settings.get("disablePyPIFallback") is not True:
        raise BuildError("the site would fall back to PyPI")
    if not list((site / "pypi").glob("ipyllm-*.whl")):
        raise BuildError("ipyllm's wheel is missing from the site")
