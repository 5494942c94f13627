"""The Cython-compiled announce modules (``setup.py``): built by ``make install``, never stale."""

from __future__ import annotations

import importlib
import importlib.machinery
import os

import pytest

import setup
from tracker.announce import refuse_stale_compiled_modules

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


@pytest.mark.parametrize("path", setup.COMPILED)
def test_make_install_compiled_every_listed_module_and_python_loads_it(path):
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    assert module.__file__.endswith(SUFFIX), f"{path} runs from source: run `make speedups`"


def test_a_compiled_module_older_than_its_source_refuses_to_load(tmp_path):
    source, compiled = tmp_path / "swarm.py", tmp_path / f"swarm{SUFFIX}"
    source.write_text("x = 1\n")
    compiled.write_bytes(b"")
    os.utime(compiled, (1_000_000, 1_000_000))
    with pytest.raises(ImportError, match="make speedups"):
        refuse_stale_compiled_modules(tmp_path)
    os.utime(compiled, None)  # rebuilt: newer than the source again
    refuse_stale_compiled_modules(tmp_path)
