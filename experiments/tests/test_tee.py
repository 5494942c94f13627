"""The TEE path, against a local stand-in speaking the dstack agent's socket protocol
(:mod:`experiments.tests.dstack_standin`) through the real dstack-sdk client."""

from __future__ import annotations

import hashlib

import pytest

from experiments import tee
from experiments.tests.conftest import TEE_ITERATIONS as ITERATIONS
from experiments.tests.dstack_standin import APP_ID, QUOTE_PREFIX, serve
from experiments.tests.harness import LATENCY, PNG_MAGIC, TEE_ROWS, read_csv


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """The stand-in on a socket in a temporary folder, named by DSTACK_SIMULATOR_ENDPOINT."""
    path = tmp_path / "dstack.sock"
    server, thread = serve(path)
    monkeypatch.setenv("DSTACK_SIMULATOR_ENDPOINT", str(path))
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_detect_finds_the_agent_and_uses_it_for_keys_and_quotes(standin):
    status = tee.detect()
    assert status.present
    assert status.description.startswith("TEE: dstack at ")
    assert APP_ID in status.description
    key = status.provider.derive_key("pbts/a")
    assert len(key) == 32
    assert status.provider.derive_key("pbts/a") == key  # derivation is deterministic
    assert status.provider.derive_key("pbts/b") != key
    data = hashlib.sha256(b"report").digest()
    quote = status.provider.quote(data)
    assert quote.startswith(QUOTE_PREFIX) and data in quote
    assert standin.calls == {"/Info": 1, "/GetKey": 3, "/GetQuote": 1}


def test_no_socket_is_no_tee(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTACK_SIMULATOR_ENDPOINT", str(tmp_path / "absent.sock"))
    status = tee.detect()
    assert not status.present
    assert status.description.startswith(f"{tee.NO_TEE} (no dstack socket at ")


def test_something_that_is_not_an_agent_is_no_tee(tmp_path, monkeypatch):
    impostor = tmp_path / "dstack.sock"
    impostor.write_text("not a socket")
    monkeypatch.setenv("DSTACK_SIMULATOR_ENDPOINT", str(impostor))
    status = tee.detect()
    assert not status.present
    assert "did not answer" in status.description


def test_the_harness_measures_the_tee_rows_when_an_agent_answers(runs):
    out, stdout = runs.tee.out, runs.tee.stdout()
    assert stdout.splitlines()[0].startswith("TEE: dstack at ")
    _, summary = read_csv(out / "summary.csv")
    assert [row["measurement"] for row in summary] == LATENCY
    for row in summary:
        assert row["n"] == str(ITERATIONS), row["measurement"]
        assert float(row["mean"]) > 0
    for name in TEE_ROWS:
        _, rows = read_csv(out / f"{name}.csv")
        assert len(rows) == ITERATIONS
        assert (out / f"latency_{name}.png").read_bytes().startswith(PNG_MAGIC)
    assert "TEE:       TEE: dstack at" in (out / "report.txt").read_text()
    tex = (out / "results.tex").read_text()
    assert f"keygen\\_tee & {ITERATIONS} & " in tex and "n/a" not in tex
    # Each timed sample and each of the 3 warm-up runs called the agent once.
    calls = runs.standin.calls
    assert calls == {"/Info": 1, "/GetKey": ITERATIONS + 3, "/GetQuote": ITERATIONS + 3}
