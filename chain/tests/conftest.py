"""Fixtures of the chain tests: anvil (the npm package, pinned) on 127.0.0.1 on a free port,
started here and stopped by its PID. A test that needs anvil fails, never skips, when it
cannot start. The site-level tests also get this site configured against it (``site``) and
staff and member API clients (``staff``, ``reader``).

The keys used here are anvil's dev accounts, derived from the public ``test test ... junk``
mnemonic and read from anvil's own ``--config-out`` file: TEST FIXTURES ONLY, worthless on any
real chain.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from chain.client import ChainClient
from chain.devnet import Anvil, AnvilError
from chain.tests.apikit import api_for
from chain.tests.sitekit import chain_settings, set_up_contracts
from tracker.tests.factories import MemberFactory


def _start(anvil: Anvil) -> Anvil:
    try:
        return anvil.start()
    except AnvilError as exc:
        anvil.close()
        pytest.fail(f"anvil could not start: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """One anvil for the session (tests deploy fresh contracts, so they do not interfere)."""
    node = _start(Anvil())
    yield node
    node.close()


@pytest.fixture
def own_anvil(tmp_path) -> Iterator[Anvil]:
    """An anvil of the test's own, with a ``--state`` file, for tests that stop and restart
    it (the chain survives the restart)."""
    node = _start(Anvil(state_file=tmp_path / "anvil-state.json"))
    yield node
    node.close()


def dev_client(node: Anvil, index: int) -> ChainClient:
    """A client on dev account ``index`` of ``node`` (anvil's public dev key; tests only)."""
    return ChainClient(node.url, node.dev_private_key(index), retries=2, request_timeout=5)


@pytest.fixture
def owner(anvil: Anvil) -> ChainClient:
    """Dev account 0: deploys and owns the contracts in the contract tests."""
    return dev_client(anvil, 0)


@pytest.fixture
def stranger(anvil: Anvil) -> ChainClient:
    """Dev account 1: someone else."""
    return dev_client(anvil, 1)


@pytest.fixture
def other_site(anvil: Anvil) -> ChainClient:
    """Dev account 2: the owner of another (successor) site's contract."""
    return dev_client(anvil, 2)


@pytest.fixture
def site(anvil: Anvil) -> Iterator[Anvil]:
    """This site configured against the session anvil, with fresh contracts."""
    with chain_settings(anvil):
        set_up_contracts()
        yield anvil


@pytest.fixture
def staff() -> APIClient:
    """An API client of a staff member (the /contract writes are for staff only)."""
    return api_for(MemberFactory(is_staff=True))


@pytest.fixture
def reader() -> APIClient:
    """A signed-in member (GET /contract/user/<name> is for members only)."""
    return api_for(MemberFactory())
