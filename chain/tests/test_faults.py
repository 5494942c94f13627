"""Faults: the RPC endpoint going down (before and during a push), crashes between recording,
broadcasting and receipt, a transaction reverting on chain, the wrong chain id, an account out of
funds or not owning the contract. Each ends in a clear status, no crash, nothing lost or
applied twice."""

from __future__ import annotations

import pytest
from django.test import Client

from chain import client as client_module
from chain.client import (
    ChainClient,
    ChainNotConfigured,
    ChainUnavailable,
    InsufficientFunds,
    NotOwner,
    WrongChain,
)
from chain.contracts import record_id
from chain.models import ChainConfig, ChainMember, ChainStatus, PushBatch, TxStatus
from chain.services import transactions
from chain.services.push import MAX_FAILURES, members_push
from chain.services.transactions import chain_client
from chain.tasks import push_members
from chain.tests.conftest import dev_client
from chain.tests.sitekit import (
    chain_settings,
    credit,
    keyed_member,
    set_up_contracts,
    unpublished,
)
from tracker.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


class Crash(Exception):
    """Stands for the worker dying at that point."""


@pytest.fixture
def site(own_anvil):
    """This site on an anvil of its own (which the test may stop and restart)."""
    with chain_settings(own_anvil):
        set_up_contracts()
        yield own_anvil


def on_chain(pk: bytes) -> tuple:
    client = chain_client()
    contract = client.contract("Reputation", ChainConfig.objects.get().reputation_address)
    return tuple(contract.functions.userInfo(record_id(pk)).call())[:3]


def change_events() -> int:
    """UserAdded + UserUpdated events the contract ever emitted (a push applied twice, or a
    second transaction for the same change, would show here)."""
    client = chain_client()
    contract = client.contract("Reputation", ChainConfig.objects.get().reputation_address)
    added = contract.events.UserAdded().get_logs(from_block=0)
    updated = contract.events.UserUpdated().get_logs(from_block=0)
    return len(added) + len(updated)


def status() -> tuple[str, str]:
    config = ChainConfig.objects.get()
    return config.status, config.status_detail


def test_rpc_down_pushes_wait_then_drain_once(site):
    members = [keyed_member() for _ in range(3)]
    for keyed in members:
        credit(keyed.member, 10, 20)
    site.stop()
    with pytest.raises(ChainUnavailable):
        members_push()
    assert status()[0] == ChainStatus.RPC_DOWN
    assert push_members() == "rpc_down"  # the beat task returns, it does not crash
    assert PushBatch.objects.count() == 0
    assert len(unpublished()) == 3  # nothing lost
    site.start()
    result = members_push()
    assert result.pushed == 3
    assert status()[0] == ChainStatus.OK
    assert all(on_chain(k.pk) == (True, 10, 20) for k in members)
    assert change_events() == 3
    assert members_push().batches == []  # and nothing doubled


def test_rpc_dies_between_recording_and_broadcast(site, monkeypatch):
    """The record is written before the broadcast; the endpoint dies before the broadcast.
    After it returns, the same signed bytes are sent: one transaction, one change."""
    keyed = keyed_member()
    credit(keyed.member, 5, 5)
    real_send = ChainClient.send_raw

    def die_then_send(self, raw):
        site.stop()
        return real_send(self, raw)

    monkeypatch.setattr(ChainClient, "send_raw", die_then_send)
    with pytest.raises(ChainUnavailable):
        members_push()
    monkeypatch.setattr(ChainClient, "send_raw", real_send)
    (batch,) = PushBatch.objects.all()
    assert batch.tx_status == TxStatus.PENDING
    recorded_hash = bytes(batch.tx_hash)
    site.start()
    members_push()
    batch.refresh_from_db()
    assert batch.tx_status == TxStatus.CONFIRMED
    assert bytes(batch.tx_hash) == recorded_hash
    assert batch.broadcasts == 1
    assert PushBatch.objects.count() == 1
    assert on_chain(keyed.pk) == (True, 5, 5)
    assert change_events() == 1
    assert unpublished() == set()


def test_crash_after_broadcast_is_reconciled_by_hash(site, monkeypatch):
    """The worker dies after the broadcast, before it saw the receipt: the next run finds the
    receipt by hash, marks the batch confirmed and sends nothing new for those members."""
    members = [keyed_member() for _ in range(2)]
    for keyed in members:
        credit(keyed.member, 3, 4)

    def crash(*args, **kwargs):
        raise Crash

    monkeypatch.setattr(ChainClient, "wait_receipt", crash)
    with pytest.raises(Crash):
        members_push()
    monkeypatch.undo()
    (batch,) = PushBatch.objects.all()
    assert batch.tx_status == TxStatus.SENT
    assert len(unpublished()) == 2  # not yet confirmed
    result = members_push()
    assert result.batches == []  # nothing re-sent
    batch.refresh_from_db()
    assert batch.tx_status == TxStatus.CONFIRMED and batch.block_number
    assert change_events() == 2
    assert unpublished() == set()
    assert ChainConfig.objects.get().lease_owner == ""  # the crashed run let go of the lease


def test_crash_before_broadcast_sends_the_recorded_bytes(site, monkeypatch):
    keyed = keyed_member()
    credit(keyed.member, 9, 9)

    def crash(self, raw):
        raise Crash

    monkeypatch.setattr(ChainClient, "send_raw", crash)
    with pytest.raises(Crash):
        members_push()
    monkeypatch.undo()
    (batch,) = PushBatch.objects.all()
    assert batch.tx_status == TxStatus.PENDING
    members_push()
    batch.refresh_from_db()
    assert batch.tx_status == TxStatus.CONFIRMED
    assert PushBatch.objects.count() == 1
    assert on_chain(keyed.pk) == (True, 9, 9)


def test_reverted_transaction_is_failed_never_success(site, monkeypatch):
    """Hole 11: the original reported reverted transactions as success. Out of gas on chain
    (status 0): the batch is failed with a reason, the status says so, the members stay
    waiting and are pushed by the next good run."""
    members = [keyed_member() for _ in range(3)]
    for keyed in members:
        credit(keyed.member, 8, 8)
    monkeypatch.setattr(client_module, "GAS_MARGIN", 0.5)
    result = members_push()
    (batch,) = result.batches
    assert batch.tx_status == TxStatus.FAILED
    assert batch.block_number and batch.gas_used == batch.gas_limit
    assert "out of gas" in batch.error
    assert result.pushed == 0
    assert status()[0] == ChainStatus.REVERTED
    assert on_chain(members[0].pk) == (False, 0, 0)
    assert len(unpublished()) == 3
    assert {r.failures for r in ChainMember.objects.all()} == {1}
    public = Client().get("/contract/status").json()
    assert public["status"] == "reverted"
    monkeypatch.setattr(client_module, "GAS_MARGIN", 1.25)
    assert members_push().pushed == 3
    assert status()[0] == ChainStatus.OK


def test_repeated_failures_block_the_members(site, monkeypatch):
    keyed = keyed_member()
    credit(keyed.member, 1, 1)
    monkeypatch.setattr(client_module, "GAS_MARGIN", 0.5)
    for _ in range(MAX_FAILURES):
        members_push(max_batches=1)
    record = ChainMember.objects.get(member=keyed.member)
    assert record.is_blocked and record.failures == MAX_FAILURES
    assert members_push().batches == []  # no endless retries of a failing member


def test_wrong_chain_id_sends_nothing(site):
    keyed = keyed_member()
    credit(keyed.member, 1, 1)
    ChainConfig.objects.filter(pk=1).update(chain_id=1)
    with pytest.raises(WrongChain, match="serves chain 31337; expected chain 1"):
        members_push()
    assert status()[0] == ChainStatus.WRONG_CHAIN
    assert push_members() == "wrong_chain"
    assert PushBatch.objects.count() == 0
    ChainConfig.objects.filter(pk=1).update(chain_id=31337)
    with chain_settings(site, PBTS_CHAIN_ID=5), pytest.raises(WrongChain):
        members_push()


def test_no_funds_is_a_clear_status_and_nothing_is_recorded(site):
    keyed = keyed_member()
    credit(keyed.member, 1, 1)
    client = chain_client()
    balance = client.balance()
    client.w3.provider.make_request("anvil_setBalance", [client.address, "0x0"])
    with pytest.raises(InsufficientFunds, match="holds 0 wei"):
        members_push()
    assert status()[0] == ChainStatus.NO_FUNDS
    assert PushBatch.objects.count() == 0
    assert keyed.member.pk in unpublished()
    client.w3.provider.make_request("anvil_setBalance", [client.address, hex(balance)])
    assert members_push().pushed == 1


def test_another_account_is_refused_as_not_owner(site):
    keyed = keyed_member()
    credit(keyed.member, 1, 1)
    with chain_settings(site, account=4), pytest.raises(NotOwner):
        members_push()
    assert status()[0] == ChainStatus.NOT_OWNER


def test_reset_chain_is_reported(site, tmp_path):
    site.stop()
    site.state_file.unlink()
    site.start()  # a brand-new chain on the same port: the contract is gone
    with pytest.raises(ChainNotConfigured, match="No contract at"):
        members_push()


def test_admin_shows_the_chain_status(site, client):
    site.stop()
    with pytest.raises(ChainUnavailable):
        members_push()
    staff = MemberFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    page = client.get("/admin/chain/chainconfig/")
    assert page.status_code == 200
    assert b"RPC endpoint unreachable" in page.content
    detail = client.get("/admin/chain/chainconfig/1/change/")
    assert detail.status_code == 200
    assert b"rpc.reachable: False" in detail.content
    assert site.dev_private_key(0)[2:].encode() not in detail.content
    site.start()


def test_dev_client_helper_uses_public_dev_keys_only(site):
    assert dev_client(site, 0).address == chain_client().address
    assert "private" not in repr(chain_client()).lower()
    assert transactions.chain_client().address.startswith("0x")
