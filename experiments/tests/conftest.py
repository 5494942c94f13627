"""The two harness runs the tests parse, started together once per session: a baseline run
without a TEE, and a run against the dstack stand-in."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from experiments.tests.dstack_standin import StandIn, serve
from experiments.tests.harness import HarnessRun

BASELINE_ITERATIONS = 20
TEE_ITERATIONS = 5


@dataclass
class Runs:
    baseline: HarnessRun
    tee: HarnessRun
    standin: StandIn


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Start both runs. The baseline's environment points at services that do not exist and at
    a dstack socket that does not exist: the harness must ignore the first (it runs on its own
    temporary SQLite file) and report no TEE for the second. The TEE run's
    ``DSTACK_SIMULATOR_ENDPOINT`` names the stand-in's socket."""
    folder = tmp_path_factory.mktemp("experiments")
    server, thread = serve(folder / "dstack.sock")
    baseline = HarnessRun(
        ["--iterations", str(BASELINE_ITERATIONS), "--duration", "2"],
        out=folder / "baseline",
        env={
            "DSTACK_SIMULATOR_ENDPOINT": str(folder / "absent.sock"),
            "DATABASE_URL": "postgres://nobody@127.0.0.1:1/not_a_database",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "CELERY_BROKER_URL": "redis://127.0.0.1:1/1",
            "DJANGO_SETTINGS_MODULE": "pbts_site.settings",
        },
    )
    tee = HarnessRun(
        [
            *("--iterations", str(TEE_ITERATIONS), "--duration", "0.5", "--workers", "1,2"),
            *("--scaling", "verify:processes", "--batch", "8"),
        ],
        out=folder / "tee",
        env={"DSTACK_SIMULATOR_ENDPOINT": str(folder / "dstack.sock")},
    )
    yield Runs(baseline, tee, server)
    baseline.stop()
    tee.stop()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
