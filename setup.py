"""Compiles the announce pipeline (``tracker/announce/``, ``tracker/trackerd.py``) with Cython,
in place.

``make install`` runs ``python setup.py build_ext --inplace``; nothing is installed. The same
``.py`` files run unchanged when no compiled module is present (the modules are plain Python;
Cython makes their calls and loops cheaper: ~1.2x announces/s in ``bench/announce.py``). A
compiled module older than its source refuses to load (``tracker/announce/__init__.py``).
"""

from Cython.Build import cythonize
from setuptools import setup

# The per-announce path: parse, decide, update the swarm, encode, share through Redis, UDP,
# and trackerd's HTTP front end.
COMPILED = (
    "tracker/announce/protocol.py",
    "tracker/announce/swarm.py",
    "tracker/announce/store.py",
    "tracker/announce/handler.py",
    "tracker/announce/redis_sync.py",
    "tracker/announce/udp.py",
    "tracker/trackerd.py",
)

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
    )
