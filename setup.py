"""Compiles the announce pipeline (``tracker/announce/``, ``tracker/trackerd.py``,
``tracker/authority.py``) with Cython into ``build/speedups/``, out of the source tree:
``make speedups`` runs ``python setup.py build_ext``; nothing is installed.

The build is optional. By default (``make run``, ``make test``) the ``.py`` files run and no
compiler is needed; ``PBTS_SPEEDUPS=1`` (the Docker image, ``make bench``,
``make test-compiled``) makes ``tracker`` and ``tracker.announce`` import the compiled modules
from ``build/speedups/`` instead, and refuse one that is missing or older than its source
(``tracker/speedups.py``, which lists the modules). The modules are plain Python; Cython makes
their calls and loops cheaper: ~1.2x announces/s in ``bench/announce.py``.
"""

import importlib.util
from pathlib import Path

from Cython.Build import cythonize
from setuptools import setup


def _load_speedups():
    """``tracker/speedups.py`` loaded on its own: importing the ``tracker`` package would apply
    ``PBTS_SPEEDUPS`` (and, switched on, refuse the build this script is about to make)."""
    path = Path(__file__).resolve().parent / "tracker" / "speedups.py"
    spec = importlib.util.spec_from_file_location("_pbts_speedups", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_speedups = _load_speedups()
# The source files compiled (tracker.speedups.MODULES) and where the extensions go.
COMPILED = tuple(name.replace(".", "/") + ".py" for name in _speedups.MODULES)
BUILD_LIB = str(_speedups.BUILD_DIR.relative_to(_speedups.ROOT))

if __name__ == "__main__":
    setup(
        packages=[],
        py_modules=[],
        ext_modules=cythonize(
            list(COMPILED),
            build_dir="build/cython",
            compiler_directives={"language_level": 3},
            quiet=True,
        ),
        options={"build_ext": {"build_lib": BUILD_LIB}},
    )
