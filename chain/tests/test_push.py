"""The site pushing members' verified totals to its contract: set-up, batches of at most 100,
markers cleared only after confirmation, nothing sent twice, racing workers, deterministic
reverts blocked instead of retried forever."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from chain.client import ChainNotConfigured
from chain.contracts import record_id
from chain.models import ChainConfig, ChainMember, ChainStatus, PushBatch, PushItem, TxStatus
from chain.services import transactions
from chain.services.push import members_push
from chain.services.transactions import ChainBusy, chain_client, chain_lease
from chain.tasks import push_members
from chain.tests.sitekit import (
    chain_settings,
    credit,
    keyed_member,
    unpublished,
)
from core.models import AuditLog

pytestmark = pytest.mark.django_db(transaction=False)
GIB = 1024**3


def on_chain(pk: bytes) -> tuple:
    client = chain_client()
    contract = client.contract("Reputation", ChainConfig.objects.get().reputation_address)
    return tuple(contract.functions.userInfo(record_id(pk)).call())[:3]


def test_set_up_records_addresses_and_chain_id(site):
    config = ChainConfig.objects.get()
    assert config.chain_id == 31337
    assert config.factory_address.startswith("0x") and len(config.factory_address) == 42
    assert config.reputation_address.startswith("0x")
    assert config.owner_address == chain_client().address
    assert config.status == ChainStatus.OK
    out = StringIO()
    call_command("chain_status", stdout=out)
    status = json.loads(out.getvalue())
    assert status["rpc_url"] == site.url  # no credentials in it to hide
    assert status["chain_id"] == 31337
    assert status["account"] == config.owner_address
    assert status["factory"] == config.factory_address
    assert status["reputation"] == config.reputation_address
    assert status["rpc"]["reachable"] is True
    assert site.dev_private_key(0)[2:] not in out.getvalue()
    # Each set-up step is audited with the fields it changed, old and new.
    created = AuditLog.objects.get(action="chain_reputation_create")
    assert created.old_values == {"reputation_address": "", "referrer_address": ""}
    assert created.new_values == {
        "reputation_address": config.reputation_address,
        "referrer_address": "",
    }
    deployed = AuditLog.objects.get(action="chain_factory_deploy")
    assert deployed.new_values == {"factory_address": config.factory_address, "chain_id": 31337}


def test_status_command_says_not_configured_without_settings(db):
    out = StringIO()
    call_command("chain_status", stdout=out)
    status = json.loads(out.getvalue())
    assert status["configured"] is False
    assert status["status"] == "not configured"
    for key in ("rpc_url", "account", "chain_id", "factory", "reputation"):
        assert status[key] == "not configured", key
    assert push_members() == "not configured"
    with pytest.raises(ChainNotConfigured):
        members_push()


def test_push_sends_changed_members_once_and_then_nothing_differs(site):
    alice, bob = keyed_member(), keyed_member()
    credit(alice.member, 5 * GIB, GIB)
    credit(bob.member, GIB, 3 * GIB)
    result = members_push()
    assert result.pushed == 2
    (batch,) = result.batches
    assert batch.tx_status == TxStatus.CONFIRMED
    assert batch.block_number and batch.gas_used and batch.nonce is not None
    assert on_chain(alice.pk) == (True, 5 * GIB, GIB)
    assert on_chain(bob.pk) == (True, GIB, 3 * GIB)
    assert unpublished() == set()
    record = ChainMember.objects.get(member=alice.member)
    assert bytes(record.record_id) == record_id(alice.pk)
    assert (record.pushed_uploaded, record.pushed_downloaded) == (5 * GIB, GIB)
    # Nothing changed: nothing is sent.
    assert members_push().batches == []
    # Alice grows: only she is sent.
    credit(alice.member, 6 * GIB, GIB)
    (batch,) = members_push().batches
    assert list(batch.items.values_list("member_id", flat=True)) == [alice.member.pk]
    assert on_chain(alice.pk) == (True, 6 * GIB, GIB)


def test_batches_hold_at_most_100_members(site):
    members = [keyed_member() for _ in range(101)]
    for i, keyed in enumerate(members):
        credit(keyed.member, 1000 + i, 10 + i)
    result = members_push()
    assert [b.size for b in result.batches] == [100, 1]
    assert all(b.tx_status == TxStatus.CONFIRMED for b in result.batches)
    assert on_chain(members[-1].pk) == (True, 1100, 110)
    assert PushItem.objects.count() == 101


def test_change_during_push_is_pushed_next_time(site, monkeypatch):
    keyed = keyed_member()
    credit(keyed.member, 100, 100)
    real = transactions._broadcast

    def change_then_broadcast(client, record):
        credit(keyed.member, 200, 100)  # verification credits more meanwhile
        real(client, record)

    monkeypatch.setattr(transactions, "_broadcast", change_then_broadcast)
    members_push(max_batches=1)
    monkeypatch.setattr(transactions, "_broadcast", real)
    assert on_chain(keyed.pk) == (True, 100, 100)
    assert keyed.member.pk in unpublished()  # still differs
    members_push()
    assert on_chain(keyed.pk) == (True, 200, 100)


def test_members_without_key_are_left_waiting(site):
    from tracker.tests.factories import MemberFactory

    keyless = MemberFactory()
    credit(keyless, 10, 10)
    assert members_push().batches == []
    assert keyless.pk in unpublished()


def test_two_workers_never_hold_the_lease_together(site):
    """Hole 11: racy nonces. The sender lease is a conditional UPDATE: while one worker holds
    it, another cannot send (and so cannot pick the same nonce)."""
    keyed = keyed_member()
    credit(keyed.member, 1, 1)
    with chain_lease():
        with pytest.raises(ChainBusy):
            members_push()
        assert push_members() == "busy"
    assert PushBatch.objects.count() == 0
    assert members_push().pushed == 1


def test_expired_lease_is_taken_over(site):
    with chain_lease() as token:
        ChainConfig.objects.filter(pk=1).update(lease_until=timezone.now())
        keyed = keyed_member()
        credit(keyed.member, 1, 1)
        assert members_push().pushed == 1  # the crashed holder's lease had expired
        with pytest.raises(transactions.LeaseLost):
            transactions.lease_renew(token)


def test_consecutive_nonces_across_batches(site):
    members = [keyed_member() for _ in range(3)]
    for keyed in members:
        credit(keyed.member, 7, 7)
    with chain_settings(site, PBTS_CHAIN_BATCH_SIZE=1):
        result = members_push()
    nonces = [b.nonce for b in result.batches]
    assert len(nonces) == 3
    assert nonces == list(range(nonces[0], nonces[0] + 3))


def test_site_decrease_blocks_the_member_not_the_batch(site):
    """Counters never decrease: a member whose site totals fell below the chain's is blocked
    (staff look) and the rest of the batch goes through."""
    shrinking, fine = keyed_member(), keyed_member()
    credit(shrinking.member, 100, 100)
    members_push()
    credit(shrinking.member, 50, 100)
    credit(fine.member, 1, 1)
    result = members_push()
    assert result.blocked == [shrinking.member.pk]
    assert result.pushed == 1
    record = ChainMember.objects.get(member=shrinking.member)
    assert record.is_blocked and "never decrease" in record.last_error
    assert on_chain(shrinking.pk) == (True, 100, 100)


def test_contract_decrease_found_in_simulation_is_blocked_not_sent(site):
    """The contract holds more than the site believes (someone else wrote with the key): the
    simulation names the member, who is blocked; nothing reverts on chain."""
    from chain.tests.chainutil import transact

    keyed, other = keyed_member(), keyed_member()
    credit(keyed.member, 10, 10)
    members_push()
    client = chain_client()
    contract = client.contract("Reputation", ChainConfig.objects.get().reputation_address)
    transact(client, contract, "updateUser", record_id(keyed.pk), 10**6, 10**6)
    credit(keyed.member, 20, 20)
    credit(other.member, 5, 5)
    before = PushBatch.objects.count()
    result = members_push()
    assert result.blocked == [keyed.member.pk]
    assert PushBatch.objects.count() == before + 1  # only the good member's batch
    assert ChainMember.objects.get(member=keyed.member).last_error.startswith("CounterDecreased")
    assert on_chain(other.pk) == (True, 5, 5)
