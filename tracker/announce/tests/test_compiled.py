"""Which build of the announce pipeline runs (``tracker/speedups.py``): the ``.py`` sources by
default, the Cython build in ``build/speedups/`` (``make speedups``) with ``PBTS_SPEEDUPS=1``,
and never a stale one.

``make test`` runs this file with the switch off and ``make test-compiled`` (``.ci/run``) with
it on, where the first test checks that the compiled modules really are the ones loaded.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import setup
import tracker
import tracker.announce
from tracker import speedups

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so
ANNOUNCE_MODULES = [m for m in speedups.MODULES if m.startswith("tracker.announce.")]


@pytest.mark.parametrize("name", speedups.MODULES)
def test_the_loaded_modules_are_the_build_the_switch_asks_for(name):
    file = Path(importlib.import_module(name).__file__)
    if speedups.enabled():
        assert file.is_relative_to(speedups.BUILD_DIR), f"{name} runs from {file}"
        assert file.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), file
    else:
        assert file == speedups.ROOT / (name.replace(".", "/") + ".py"), f"{name}: {file}"


def test_the_packages_say_which_build_runs():
    assert tracker.announce.COMPILED is speedups.enabled()
    assert tracker.COMPILED is speedups.enabled()
    build_first = tracker.announce.__path__[0] == str(speedups.BUILD_DIR / "tracker" / "announce")
    assert build_first is speedups.enabled()


def test_setup_py_compiles_the_listed_modules_out_of_the_source_tree():
    assert tuple(m.replace(".", "/") + ".py" for m in speedups.MODULES) == setup.COMPILED
    assert all((speedups.ROOT / path).is_file() for path in setup.COMPILED)
    assert setup.BUILD_LIB == "build/speedups"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("", False), ("0", False), ("off", False), ("1", True), (" TRUE ", True)],
)
def test_the_switch_values(value, expected):
    environ = {} if value is None else {"PBTS_SPEEDUPS": value}
    assert speedups.enabled(environ) is expected


def test_an_unknown_switch_value_refuses_rather_than_guessing():
    with pytest.raises(ImportError, match=r"use 1 .* or 0"):
        speedups.enabled({"PBTS_SPEEDUPS": "yes please"})


# --- use_build on a fake tree -----------------------------------------------------------


def fake_tree(root: Path, *, compiled: bool, age: float = 0.0) -> Path:
    """``root/tracker/announce/`` with the compiled modules' sources, and (``compiled``) a
    fake compiled file of each in ``root/build/speedups/`` whose mtime is ``age`` seconds
    before its source's. Returns the build folder of ``tracker.announce``."""
    sources = root / "tracker" / "announce"
    build = root / "build" / "speedups" / "tracker" / "announce"
    sources.mkdir(parents=True)
    build.mkdir(parents=True)
    for name in ANNOUNCE_MODULES:
        short = name.rpartition(".")[2]
        source = sources / f"{short}.py"
        source.write_text("x = 1\n")
        os.utime(source, (2_000_000, 2_000_000))
        if compiled:
            fake = build / f"{short}{SUFFIX}"
            fake.write_bytes(b"not an extension module")
            os.utime(fake, (2_000_000 - age, 2_000_000 - age))
    return build


@pytest.mark.parametrize("compiled", [True, False])
def test_switch_off_leaves_the_path_alone_whatever_lies_in_build(tmp_path, compiled):
    fake_tree(tmp_path, compiled=compiled, age=1000)  # stale, or missing
    path = [str(tmp_path / "tracker" / "announce")]
    for environ in ({}, {"PBTS_SPEEDUPS": "0"}):
        assert not speedups.use_build("tracker.announce", path, root=tmp_path, environ=environ)
        assert path == [str(tmp_path / "tracker" / "announce")]


def test_switch_on_puts_a_fresh_build_first_on_the_path(tmp_path):
    build = fake_tree(tmp_path, compiled=True, age=-1)  # compiled after the source was written
    path = [str(tmp_path / "tracker" / "announce")]
    on = {"PBTS_SPEEDUPS": "1"}
    assert speedups.use_build("tracker.announce", path, root=tmp_path, environ=on)
    assert path == [str(build), str(tmp_path / "tracker" / "announce")]
    assert speedups.use_build("tracker.announce", path, root=tmp_path, environ=on)
    assert len(path) == 2  # applied once


def test_switch_on_refuses_a_compiled_module_older_than_its_source(tmp_path):
    build = fake_tree(tmp_path, compiled=True, age=-1)
    os.utime(build / f"swarm{SUFFIX}", (1_000_000, 1_000_000))  # swarm.py edited since
    path = [str(tmp_path / "tracker" / "announce")]
    with pytest.raises(ImportError, match=r"swarm\..*is older than .*swarm\.py.*make speedups"):
        speedups.use_build("tracker.announce", path, root=tmp_path, environ={"PBTS_SPEEDUPS": "1"})
    assert len(path) == 1
    os.utime(build / f"swarm{SUFFIX}", None)  # compiled again: newer than the source
    assert speedups.use_build(
        "tracker.announce", path, root=tmp_path, environ={"PBTS_SPEEDUPS": "1"}
    )


def test_switch_on_refuses_a_missing_compiled_module(tmp_path):
    build = fake_tree(tmp_path, compiled=True, age=-1)
    (build / f"udp_tracker{SUFFIX}").unlink()
    path = [str(tmp_path / "tracker" / "announce")]
    with pytest.raises(
        ImportError, match=r"tracker\.announce\.udp_tracker is not compiled.*make speedups"
    ):
        speedups.use_build("tracker.announce", path, root=tmp_path, environ={"PBTS_SPEEDUPS": "1"})


@pytest.mark.parametrize("switch", ["0", "1"])
def test_a_compiled_module_left_beside_its_source_refuses_to_load(tmp_path, switch):
    """The old in-place build's output would shadow the source: refused in either mode."""
    fake_tree(tmp_path, compiled=True, age=-1)
    (tmp_path / "tracker" / "announce" / f"store{SUFFIX}").write_bytes(b"")
    path = [str(tmp_path / "tracker" / "announce")]
    with pytest.raises(ImportError, match=r"store\..* in-place build .*make clean"):
        speedups.use_build(
            "tracker.announce", path, root=tmp_path, environ={"PBTS_SPEEDUPS": switch}
        )


# --- the real import machinery, in a copy of the package ---------------------------------


def copied_tree(root: Path) -> Path:
    """A copy of ``tracker/__init__.py``, ``tracker/speedups.py`` and ``tracker/announce/*.py``
    under ``root``, with a broken "compiled" file of every module in its ``build/speedups/``,
    newer than the sources; then ``records.py`` (which imports nothing outside the standard
    library) is edited, so its build is stale. Returns ``records.py``."""
    announce = root / "tracker" / "announce"
    announce.mkdir(parents=True)
    for name in ("__init__.py", "speedups.py"):
        shutil.copy2(speedups.ROOT / "tracker" / name, root / "tracker" / name)
    for source in (speedups.ROOT / "tracker" / "announce").glob("*.py"):
        shutil.copy2(source, announce / source.name)  # keeps the sources' mtimes
    for name in speedups.MODULES:
        fake = root / "build" / "speedups" / Path(*name.split(".")).with_suffix(SUFFIX)
        fake.parent.mkdir(parents=True, exist_ok=True)
        fake.write_bytes(b"not an extension module")
    build = root / "build" / "speedups" / "tracker" / "announce"
    source = announce / "records.py"
    source.write_text(source.read_text() + "\nEDITED = True\n")
    os.utime(build / f"records{SUFFIX}", (1_000_000, 1_000_000))
    return source


def import_records(root: Path, switch: str | None) -> subprocess.CompletedProcess[str]:
    """``import tracker.announce.records`` in a fresh interpreter whose ``tracker`` is the
    copy under ``root``; prints the module's file and its ``EDITED``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PBTS_SPEEDUPS", "PYTHONPATH")}
    if switch is not None:
        env["PBTS_SPEEDUPS"] = switch
    code = "import tracker.announce.records as r; print(r.__file__, r.EDITED)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("switch", [None, "0"])
def test_switch_off_an_edited_source_imports_and_runs_whatever_lies_in_build(tmp_path, switch):
    source = copied_tree(tmp_path)
    done = import_records(tmp_path, switch)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(source), "True"]


def test_switch_on_an_edited_source_refuses_its_stale_build_naming_make_speedups(tmp_path):
    copied_tree(tmp_path)
    done = import_records(tmp_path, "1")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: "), done.stderr
    assert f"records{SUFFIX} is older than {tmp_path.resolve()}/tracker/announce/records.py" in last
    assert "make speedups" in last
