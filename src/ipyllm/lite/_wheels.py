"""ipyllm's own wheel and the pure-Python wheels it needs that Pyodide's lock does not have.

They become the site's piplite index, so ``%pip install ipyllm`` in the site installs from
the site itself. The requirements are read from each wheel's metadata with the markers
evaluated as inside Pyodide: nh3, orjson and genai-prices are declared
``; sys_platform != "emscripten"`` and so are skipped (ipyllm falls back to its pure-Python
sanitizer, the standard library's JSON, and "cost unknown").
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from ._pyodide import (
    BuildError,
    Log,
    PyodideLock,
    pip_download,
    sha256_of,
    wheel_requirements,
)


def source_checkout() -> Path | None:
    """The project folder when ipyllm runs from a checkout (an editable install), else None."""
    import ipyllm

    root = Path(ipyllm.__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.exists() and 'name = "ipyllm"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def ipyllm_wheel(dest: Path, log: Log) -> Path:
    """ipyllm's wheel: built from the checkout, or the installed version from the index.

    Kept as ``dest/<sha256>/<wheel>``, so builds running at once never share a file.
    """
    from ipyllm._version import __version__

    dest.mkdir(parents=True, exist_ok=True)
    root = source_checkout()
    with tempfile.TemporaryDirectory(dir=dest) as scratch:
        if root is None:
            log(f"  pip download ipyllm=={__version__}")
            command = [sys.executable, "-m", "pip", "download", "--no-deps"]
            command += ["--only-binary=:all:", "--dest", scratch, f"ipyllm=={__version__}"]
        else:
            log(f"  pip wheel {root}")
            command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", scratch]
            if _has_hatchling():
                command.append("--no-build-isolation")
            command.append(str(root))
        # hatchling writes reproducible wheels: the same sources give the same hash.
        done = subprocess.run(command, capture_output=True, text=True, cwd=scratch)
        wheels = sorted(Path(scratch).glob("ipyllm-*.whl"))
        if done.returncode != 0 or not wheels:
            raise BuildError(f"could not get ipyllm's wheel: {done.stderr.strip()[-2000:]}")
        kept = dest / sha256_of(wheels[-1]) / wheels[-1].name
        if not kept.exists():
            kept.parent.mkdir(exist_ok=True)
            shutil.move(str(wheels[-1]), kept.with_suffix(".partial"))
            kept.with_suffix(".partial").replace(kept)
    return kept


def _has_hatchling() -> bool:
    try:
        import hatchling  # noqa: F401
    except ImportError:
        return False
    return True


def kernel_provided() -> dict[str, list[str]]:
    """The wheels the Pyodide kernel's own piplite index serves (shims among them)."""
    import jupyterlite_pyodide_kernel  # type: ignore[import-untyped]

    share = Path(sys.prefix) / "share" / "jupyter" / "labextensions"
    index = share / "@jupyterlite" / "pyodide-kernel-extension" / "static" / "pypi" / "all.json"
    if not index.exists():  # pragma: no cover - a broken jupyterlite-pyodide-kernel install
        raise BuildError(f"{index} is missing; reinstall jupyterlite-pyodide-kernel")
    del jupyterlite_pyodide_kernel
    data = json.loads(index.read_text(encoding="utf-8"))
    return {canonicalize_name(name): list(info["releases"]) for name, info in data.items()}


def piplite_wheels(
    wheel: Path, lock: PyodideLock, cache: Path, dest: Path, log: Log
) -> tuple[list[Path], set[str]]:
    """The wheels ``wheel`` needs beyond the lock and the kernel, copied into ``dest``.

    Returns them and the names of the lock packages they rely on (to keep in the lock).
    """
    provided = kernel_provided()
    wheels_cache = cache / "wheels" / f"py{lock.python_version}"
    from_lock: set[str] = set()
    chosen: dict[str, Path] = {}
    todo = [r for r in wheel_requirements(wheel) if lock.applies(r)]
    while todo:
        round_: dict[str, Requirement] = {}
        for requirement in todo:
            name = str(canonicalize_name(requirement.name))
            if name in chosen or name in from_lock or name in round_:
                continue
            locked = lock.version_of(name)
            if locked is not None and requirement.specifier.contains(locked, prereleases=True):
                from_lock.add(name)
            elif any(
                requirement.specifier.contains(v, prereleases=True) for v in provided.get(name, [])
            ):
                continue  # the kernel serves it (widgetsnbextension's shim)
            else:
                round_[name] = requirement
        todo = []
        for name, requirement in round_.items():
            found = _cached(wheels_cache, name, requirement.specifier)
            if found is None:
                spec = f"{requirement.name}{requirement.specifier}"
                downloaded = pip_download([spec], wheels_cache, lock.python_version, log)
                found = _cached(wheels_cache, name, requirement.specifier) or (
                    downloaded[0] if downloaded else None
                )
            if found is None:  # pragma: no cover - pip said it succeeded
                raise BuildError(f"no wheel found for {requirement}")
            chosen[name] = found
            todo += [r for r in wheel_requirements(found) if lock.applies(r)]
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for found in [wheel, *chosen.values()]:
        shutil.copy2(found, dest / found.name)
        copied.append(dest / found.name)
    return copied, from_lock


def _cached(folder: Path, name: str, specifier: SpecifierSet) -> Path | None:
    """The newest cached wheel of ``name`` that satisfies ``specifier``."""
    from packaging.version import InvalidVersion, Version

    best: tuple[Version, Path] | None = None
    for wheel in folder.glob("*.whl"):
        parts = wheel.name.split("-")
        if canonicalize_name(parts[0]) != name:
            continue
        try:
            version = Version(parts[1])
        except InvalidVersion:
            continue
        if specifier.contains(version, prereleases=True) and (best is None or version > best[0]):
            best = (version, wheel)
    return None if best is None else best[1]
