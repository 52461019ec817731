"""A local Pyodide distribution from the npm registry and PyPI, for a site that fetches nothing.

No wheel on PyPI bundles Pyodide, and the npm package ``pyodide`` holds only its core (the
interpreter, the standard library and ``pyodide-lock.json``), none of the packages its lock
file lists. So the distribution is assembled: the npm core, plus the pure-Python packages of
the lock that the kernel and ipyllm need, downloaded from PyPI at the locked versions. The
lock is rewritten to list only those, with the hashes of the files actually served (Pyodide
repacks its wheels, so PyPI's files differ from the ones it hashed), and with the
dependencies each wheel's own metadata declares (the lock's ``httpx`` lists none).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from email.parser import Parser
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

Log = Callable[[str], None]

#: What the Pyodide kernel loads from the lock before anything else: micropip (to install
#: piplite), and what ``piplite.install('ipykernel comm pyodide-kernel jedi ipython')``
#: resolves from the lock.
KERNEL_PACKAGES = ("micropip", "packaging", "ipython", "jedi")


def emscripten_environment(python_version: str) -> dict[str, str]:
    """The values environment markers see inside Pyodide (for ``packaging.markers``)."""
    short = ".".join(python_version.split(".")[:2])
    return {
        "implementation_name": "cpython",
        "implementation_version": python_version,
        "os_name": "posix",
        "platform_machine": "wasm32",
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Emscripten",
        "platform_version": "",
        "python_full_version": python_version,
        "python_version": short,
        "sys_platform": "emscripten",
        "extra": "",
    }


def wheel_requirements(wheel: Path) -> list[Requirement]:
    """The ``Requires-Dist`` entries of a wheel's metadata."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(
            n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1
        )
        metadata = Parser().parsestr(archive.read(name).decode("utf-8"))
    requirements = []
    for line in metadata.get_all("Requires-Dist") or []:
        try:
            requirements.append(Requirement(line))
        except InvalidRequirement:
            continue
    return requirements


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pip_download(
    requirements: Iterable[str], dest: Path, python_version: str, log: Log
) -> list[Path]:
    """Pure-Python wheels for ``python_version`` from PyPI (``pip download``), into ``dest``.

    One pip run for all of them; if it fails, one run each, so the error names the
    requirement that has no pure-Python wheel.
    """
    wanted = sorted(set(requirements))
    if not wanted:
        return []
    dest.mkdir(parents=True, exist_ok=True)
    short = ".".join(python_version.split(".")[:2])
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--only-binary=:all:", "--python-version", short, "--implementation",
        "py", "--abi", "none", "--platform", "any", "--dest", str(dest),
    ]  # fmt: skip
    log(f"  pip download {' '.join(wanted)}")
    before = set(dest.glob("*.whl"))
    done = subprocess.run([*command, *wanted], capture_output=True, text=True)
    if done.returncode != 0:
        failed = []
        for requirement in wanted:
            one = subprocess.run([*command, requirement], capture_output=True, text=True)
            if one.returncode != 0:
                failed.append(f"{requirement}: {_last_line(one.stderr)}")
        if failed:
            raise BuildError(
                "no pure-Python wheel on the package index for:\n  " + "\n  ".join(failed)
            )
    after = set(dest.glob("*.whl"))
    return sorted(after - before) or _find_wheels(dest, wanted)


def _find_wheels(dest: Path, requirements: list[str]) -> list[Path]:
    names = {canonicalize_name(Requirement(r).name) for r in requirements}
    return [w for w in dest.glob("*.whl") if canonicalize_name(w.name.split("-")[0]) in names]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "failed"


class BuildError(RuntimeError):
    """A step of the site build failed; the message says which and why."""


class PyodideLock:
    """A Pyodide release's ``pyodide-lock.json``: its Python, its packages by canonical name."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.packages: dict[str, dict[str, Any]] = {
            canonicalize_name(name): entry for name, entry in data["packages"].items()
        }

    @property
    def python_version(self) -> str:
        return str(self.data["info"]["python"])

    def applies(self, requirement: Requirement) -> bool:
        """Whether ``requirement`` holds inside this Pyodide (its environment markers)."""
        marker: Marker | None = requirement.marker
        return marker is None or marker.evaluate(emscripten_environment(self.python_version))

    def version_of(self, name: str) -> str | None:
        """The locked version of ``name`` (any spelling of it), or None if it is not locked."""
        entry = self.packages.get(canonicalize_name(name))
        return None if entry is None else str(entry["version"])

    def is_pure(self, name: str) -> bool:
        """Whether ``name`` is locked as a pure-Python wheel (so PyPI has the same one)."""
        entry = self.packages.get(canonicalize_name(name))
        return entry is not None and str(entry["file_name"]).endswith("-none-any.whl")

    def closure(self, roots: Iterable[str]) -> list[str]:
        """The roots and everything they depend on in the lock, by canonical name."""
        seen: list[str] = []
        todo = [canonicalize_name(root) for root in roots]
        while todo:
            name = todo.pop()
            if name in seen or name not in self.packages:
                continue
            seen.append(name)
            todo.extend(canonicalize_name(dep) for dep in self.packages[name]["depends"])
        return sorted(seen)


def npm_core(version: str, cache: Path, log: Log) -> Path:
    """The npm package ``pyodide@version``, unpacked (cached)."""
    core = cache / "npm" / f"pyodide-{version}"
    if (core / "pyodide-lock.json").exists():
        return core
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm is needed to fetch Pyodide's core (the npm package 'pyodide')")
    with tempfile.TemporaryDirectory() as scratch:
        log(f"  npm pack pyodide@{version}")
        done = subprocess.run(
            [npm, "pack", f"pyodide@{version}", "--pack-destination", scratch, "--silent"],
            capture_output=True,
            text=True,
        )
        tarballs = list(Path(scratch).glob("pyodide-*.tgz"))
        if done.returncode != 0 or not tarballs:
            raise BuildError(f"npm pack pyodide@{version} failed: {_last_line(done.stderr)}")
        unpacked = Path(scratch) / "unpacked"
        with tarfile.open(tarballs[0]) as archive:
            archive.extractall(unpacked, filter="data")
        core.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=core.name + ".partial-", dir=core.parent))
        shutil.move(str(unpacked / "package"), partial / "package")
        with contextlib.suppress(OSError):  # another build unpacked it meanwhile
            (partial / "package").rename(core)
        shutil.rmtree(partial, ignore_errors=True)
    return core


def distribution(
    version: str, cache: Path, roots: Iterable[str], dest: Path, log: Log
) -> tuple[Path, PyodideLock]:
    """Assemble a Pyodide distribution in ``dest`` with ``roots`` (and their dependencies).

    Returns ``dest`` and the rewritten lock. Compiled packages of the lock are left out
    (they are not on PyPI for Pyodide), and so is every package that depends on one.
    """
    core = npm_core(version, cache, log)
    lock = PyodideLock(json.loads((core / "pyodide-lock.json").read_text(encoding="utf-8")))
    wheels_cache = cache / "wheels" / f"py{lock.python_version}"
    wheels: dict[str, Path] = {
        canonicalize_name(w.name.split("-")[0]): w for w in wheels_cache.glob("*.whl")
    }
    depends: dict[str, set[str]] = {}
    roots = {str(canonicalize_name(root)) for root in roots}
    while True:  # until the wheels' own metadata brings in nothing new
        wanted = lock.closure(roots)
        pure = [name for name in wanted if lock.is_pure(name)]
        missing = [
            f"{name}=={lock.version_of(name)}"
            for name in pure
            if name not in wheels or not same_version(wheels[name], lock.version_of(name))
        ]
        for wheel in pip_download(missing, wheels_cache, lock.python_version, log):
            wheels[canonicalize_name(wheel.name.split("-")[0])] = wheel
        for name in pure:
            declared = {
                canonicalize_name(r.name)
                for r in wheel_requirements(wheels[name])
                if lock.applies(r) and canonicalize_name(r.name) in lock.packages
            }
            listed = {canonicalize_name(d) for d in lock.packages[name]["depends"]}
            depends[name] = listed | declared
        more = {dep for name in pure for dep in depends[name]} - set(wanted)
        if not more:
            break
        roots |= more
    compiled = [name for name in wanted if not lock.is_pure(name)]
    if compiled:
        log(f"  left out (compiled, not on PyPI): {', '.join(compiled)}")

    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for item in core.iterdir():
        if item.suffix != ".map" and item.name not in ("README.md", "package.json"):
            shutil.copy2(item, dest / item.name)
    kept: dict[str, Any] = {}
    for name in pure:
        entry = dict(lock.packages[name])
        wheel = wheels[name]
        shutil.copy2(wheel, dest / wheel.name)
        entry.update(
            file_name=wheel.name,
            sha256=sha256_of(wheel),
            depends=sorted(depends[name]),
            unvendored_tests=False,
        )
        kept[name] = entry
    # Drop whatever depends on a package that is not served (a compiled one).
    changed = True
    while changed:
        changed = False
        for name, entry in list(kept.items()):
            if any(dep not in kept for dep in entry["depends"]):
                log(f"  left out {name}: it needs {[d for d in entry['depends'] if d not in kept]}")
                del kept[name]
                (dest / entry["file_name"]).unlink()
                changed = True
    data = {"info": lock.data["info"], "packages": kept}
    (dest / "pyodide-lock.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    return dest, PyodideLock(data)


def same_version(wheel: Path, version: str | None) -> bool:
    try:
        return version is not None and Version(wheel.name.split("-")[1]) == Version(version)
    except InvalidVersion:
        return False
