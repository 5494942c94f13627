"""The announce pipeline shared by every front end (pure code, no Django import).

``make install`` compiles some of these modules with Cython (``setup.py``); Python imports a
compiled module in preference to its source. A compiled module older than its source would run
stale code, so importing this package refuses that with a clear error.
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path


def refuse_stale_compiled_modules(folder: Path) -> None:
    """Raise ``ImportError`` if a compiled module in ``folder`` is older than its ``.py``."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so
    for compiled in folder.glob(f"*{suffix}"):
        source = compiled.with_name(compiled.name.removesuffix(suffix) + ".py")
        if source.exists() and source.stat().st_mtime > compiled.stat().st_mtime:
            raise ImportError(
                f"{compiled} is older than {source.name}: run `make speedups` to compile it again"
                " (or delete it to run the source)"
            )


# This package and its parent (``tracker/trackerd.py`` is compiled too).
for _folder in (Path(__file__).parent, Path(__file__).parent.parent):
    refuse_stale_compiled_modules(_folder)
