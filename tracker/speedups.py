"""Which build of the announce pipeline runs: the ``.py`` sources, or the Cython build.

``make speedups`` compiles :data:`MODULES` with Cython (``setup.py``) into ``build/speedups/``,
out of the source tree. ``PBTS_SPEEDUPS`` (read from the environment when ``tracker`` is first
imported) picks the build:

- unset or ``0`` (the default; ``make run``, ``make test``): the sources run, whatever lies in
  ``build/``; editing a source never breaks an import.
- ``1`` (deployment: the Docker image, ``make bench``, ``make test-compiled``): the build
  folder goes first on the package's ``__path__``, so Python imports the compiled modules from
  there. A compiled module that is missing, or older than its source, refuses to load with an
  ``ImportError`` naming ``make speedups``: stale code never runs silently.

Either way, a compiled module left beside its source by the old in-place build
(``build_ext --inplace``) would shadow the source, so it refuses to load too (``make install``
and ``make clean`` delete them).

Standard library only and no Django import: ``tracker/__init__.py`` and
``tracker/announce/__init__.py`` call :func:`use_build`; ``setup.py`` reads :data:`MODULES`
and :data:`BUILD_DIR` from this file without importing the ``tracker`` package.
"""

from __future__ import annotations

import importlib.machinery
import os
from collections.abc import Mapping, MutableSequence
from pathlib import Path

#: The modules ``setup.py`` compiles: the per-announce path (the records, the one-pass
#: announce query scanner, the HTTP and UDP wires, the rules, the swarm and store, sharing
#: through Redis, the UDP tracker, trackerd's HTTP server, and the in-memory authority
#: trackerd asks on every announce).
MODULES = (
    "tracker.announce.records",
    "tracker.announce.query_scan",
    "tracker.announce.wire_http",
    "tracker.announce.wire_udp",
    "tracker.announce.addresses",
    "tracker.announce.rules",
    "tracker.announce.swarm",
    "tracker.announce.store",
    "tracker.announce.redis_sync",
    "tracker.announce.redis_stats",
    "tracker.announce.udp_tracker",
    "tracker.trackerd",
    "tracker.authority",
)
SWITCH = "PBTS_SPEEDUPS"
#: The project root (the folder holding ``tracker/``) and the compiled build's folder in it.
ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / "build" / "speedups"

_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"", "0", "false", "no", "off"})


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``PBTS_SPEEDUPS`` asks for the compiled build (``1``) or the sources (``0``).

    Raises:
        ImportError: any other value (a typo must not silently pick a build).
    """
    value = (os.environ if environ is None else environ).get(SWITCH, "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ImportError(
        f"{SWITCH}={value!r}: use 1 (the compiled build, `make speedups`) or 0 (the sources)"
    )


def compiled_file(folder: Path, name: str) -> Path | None:
    """The extension module ``name`` in ``folder`` that Python's importer would pick, if any."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.exists():
            return candidate
    return None


def use_build(
    package: str,
    path: MutableSequence[str],
    *,
    root: Path = ROOT,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Make ``package`` (its ``__path__`` is ``path``) import the build ``PBTS_SPEEDUPS`` asks
    for; return whether that is the compiled one.

    Switch on: every one of the package's :data:`MODULES` must be compiled in
    ``root/build/speedups`` and newer than its source; the build folder is then put first on
    ``path``. Switch off: ``path`` is left alone and ``build/`` is never looked at.

    Raises:
        ImportError: a leftover in-place compiled module; or, switch on, a compiled module
            missing or older than its source; or an unknown switch value.
    """
    relative = Path(*package.split("."))
    sources, build = root / relative, root / BUILD_DIR.relative_to(ROOT) / relative
    names = [m.rpartition(".")[2] for m in MODULES if m.rpartition(".")[0] == package]
    for name in names:
        leftover = compiled_file(sources, name)
        if leftover is not None:
            raise ImportError(
                f"{leftover} is left from the old in-place build and would shadow {name}.py:"
                f" delete it (`make install` or `make clean` does); compiled modules live in"
                f" {BUILD_DIR.relative_to(ROOT)}/ now (`make speedups`, {SWITCH}=1)"
            )
    if not enabled(environ):
        return False
    for name in names:
        source, compiled = sources / f"{name}.py", compiled_file(build, name)
        if compiled is None:
            raise ImportError(
                f"{SWITCH}=1 but {package}.{name} is not compiled (nothing in {build}):"
                f" run `make speedups`, or set {SWITCH}=0 to run the sources"
            )
        if source.exists() and source.stat().st_mtime > compiled.stat().st_mtime:
            raise ImportError(
                f"{compiled} is older than {source}: run `make speedups` to compile it again,"
                f" or set {SWITCH}=0 to run the sources"
            )
    if str(build) not in path:
        path.insert(0, str(build))
    return True
