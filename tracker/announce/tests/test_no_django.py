"""The announce pipeline and trackerd's server are pure: importing them imports no Django
(``tracker.authority``, compiled beside them, is their Django side).

Each module is imported in a fresh interpreter (this test process has Django loaded), from the
project root (not the module's ``__file__``: ``build/speedups/`` when compiled).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracker import speedups

ROOT = Path(__file__).resolve().parents[3]


# tracker.authority reads the database (Django); it is compiled because trackerd asks it on
# every announce, and it is the only compiled module allowed to import Django.
PURE = [m for m in speedups.MODULES if m != "tracker.authority"]


@pytest.mark.parametrize("module", PURE)
def test_the_module_imports_no_django(module):
    code = (
        f"import sys, {module}\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'django imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_every_announce_module_is_compiled():
    """A module of the package left out of ``speedups.MODULES`` would run uncompiled."""
    sources = sorted(p.stem for p in (ROOT / "tracker" / "announce").glob("*.py"))
    listed = sorted(m.rpartition(".")[2] for m in speedups.MODULES if "announce." in m)
    assert [s for s in sources if s != "__init__"] == listed
