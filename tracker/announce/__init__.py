"""The announce pipeline shared by every front end (pure code, no Django import).

The ``.py`` files are the only source, and by default they are what runs (``make run``,
``make test``): editing one never breaks an import. ``make speedups`` compiles the per-announce
modules (``tracker.speedups.MODULES``) with Cython into ``build/speedups/``, out of the source
tree; with ``PBTS_SPEEDUPS=1`` (deployment: the Docker image, ``make bench``,
``make test-compiled``) this package imports them from there instead, and a compiled module
that is missing or older than its source refuses to load with an ``ImportError`` naming
``make speedups`` (``tracker/speedups.py``).
"""

from tracker.speedups import use_build

#: Whether this package's compiled modules run (``PBTS_SPEEDUPS=1``) rather than the sources.
COMPILED = use_build(__name__, __path__)
