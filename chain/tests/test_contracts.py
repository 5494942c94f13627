"""Reputation and ReputationFactory on anvil, through web3.py and locally signed transactions:
access control, batch limits, migration over two hops, events, reverts, counters that never
decrease, and the contract holes of docs/origin.md section 6, hole 11."""

from __future__ import annotations

import json
import secrets

import pytest
from eth_utils import keccak
from web3 import Web3

from chain.client import ChainClient, TransactionReverted
from chain.contracts import ARTIFACTS_DIR, MAX_BATCH, record_id
from chain.tests.chainutil import create_reputation, deploy, events, transact

ZERO = "0x" + "00" * 20
GIB = 1024**3


def rid() -> bytes:
    """A fresh record id (keccak of a random 48-byte "public key")."""
    return record_id(secrets.token_bytes(48))


def reverts(name: str):
    """Expect a revert whose decoded custom error is ``name``."""
    return pytest.raises(TransactionReverted, match=rf"reverted: {name}\(")


@pytest.fixture
def factory(owner: ChainClient):
    return deploy(owner, "ReputationFactory")


@pytest.fixture
def rep(owner: ChainClient, factory):
    """A root Reputation (no referrer) owned by dev account 0."""
    return create_reputation(owner, factory, ZERO)


def info(contract, member: bytes) -> tuple:
    return tuple(contract.functions.userInfo(member).call())


# --- factory and registry -----------------------------------------------------------------


def test_create_reputation_emits_event_and_registers_creator(owner, factory):
    receipt = transact(owner, factory, "createReputation", ZERO, b"tee-quote")
    (created,) = events(factory, receipt, "ReputationCreated")
    assert created["owner"] == owner.address
    assert created["referrer"] == ZERO
    assert created["attestation"] == b"tee-quote"
    new = created["newAddress"]
    entry = factory.functions.registry(new).call()
    assert entry[0] == owner.address  # creator
    assert entry[2] == ZERO  # referrer
    assert entry[3] == keccak(b"tee-quote")
    assert factory.functions.isReputation(new).call()
    assert factory.functions.reputationCount().call() == 1
    assert factory.functions.reputations(0).call() == new
    assert owner.contract("Reputation", new).functions.owner().call() == owner.address


def test_create_reputation_refuses_a_referrer_outside_the_registry(owner, factory):
    outsider = deploy(owner, "Reputation", owner.address, ZERO)  # not created by the factory
    with reverts("UnknownReferrer"):
        transact(owner, factory, "createReputation", outsider.address, b"")
    with reverts("UnknownReferrer"):
        transact(owner, factory, "createReputation", owner.address, b"")  # not even a contract


def test_create_reputation_refuses_huge_attestation(owner, factory):
    with reverts("AttestationTooLarge"):
        transact(owner, factory, "createReputation", ZERO, b"x" * 8193)


def test_reputation_constructor_refuses_non_contract_referrer_and_zero_owner(owner):
    with pytest.raises(TransactionReverted, match="NotAContract"):
        deploy(owner, "Reputation", owner.address, owner.address)
    with pytest.raises(TransactionReverted, match="ZeroAddress"):
        deploy(owner, "Reputation", ZERO, ZERO)


# --- records: create, update, read ------------------------------------------------------


def test_add_user_then_read_in_original_shape(owner, rep):
    member = rid()
    receipt = transact(owner, rep, "addUser", member, 3 * GIB, GIB)
    assert events(rep, receipt, "UserAdded") == [
        {"id": member, "uploaded": 3 * GIB, "downloaded": GIB}
    ]
    # The original getUserData without password fields: (id, downloadSize, uploadSize).
    assert rep.functions.getUserData(member).call() == [member, GIB, 3 * GIB]
    exists, up, down, created_at, migrated_from = info(rep, member)
    assert (exists, up, down, migrated_from) == (True, 3 * GIB, GIB, ZERO)
    assert created_at > 0
    assert rep.functions.ratio(member).call() == 3 * 10**18
    assert rep.functions.userCount().call() == 1


def test_both_counters_share_one_storage_slot(owner, rep):
    member = rid()
    transact(owner, rep, "addUser", member, 7, 9)
    # _records is the mapping at slot 5 (owner, pendingOwner, userCount, offchainDataUrl,
    # approvedSuccessor come first; referrer is immutable).
    slot = keccak(member + (5).to_bytes(32, "big"))
    word = int.from_bytes(owner.w3.eth.get_storage_at(rep.address, slot), "big")
    assert word == 7 | (9 << 128)


def test_unknown_user_reads_revert_or_say_unknown(owner, rep):
    member = rid()
    with reverts("UnknownUser"):
        owner.call(rep.functions.getUserData(member))
    with reverts("UnknownUser"):
        owner.call(rep.functions.ratio(member))
    assert info(rep, member) == (False, 0, 0, 0, ZERO)


def test_ratio_without_download_is_max(owner, rep):
    member = rid()
    transact(owner, rep, "addUser", member, 5, 0)
    assert rep.functions.ratio(member).call() == 2**256 - 1


def test_add_user_never_overwrites(owner, rep):
    """Hole 11: the original addUser overwrote an existing record."""
    member = rid()
    transact(owner, rep, "addUser", member, 10 * GIB, 2 * GIB)
    with reverts("UserExists"):
        transact(owner, rep, "addUser", member, 0, 0)
    assert info(rep, member)[1:3] == (10 * GIB, 2 * GIB)
    with reverts("ZeroId"):
        transact(owner, rep, "addUser", b"\0" * 32, 1, 1)


def test_update_user_grows_never_decreases(owner, rep):
    member = rid()
    with reverts("UnknownUser"):
        transact(owner, rep, "updateUser", member, 1, 1)
    transact(owner, rep, "addUser", member, 100, 100)
    receipt = transact(owner, rep, "updateUser", member, 150, 120)
    assert events(rep, receipt, "UserUpdated") == [
        {"id": member, "uploaded": 150, "downloaded": 120}
    ]
    with reverts("CounterDecreased"):
        transact(owner, rep, "updateUser", member, 149, 200)
    with reverts("CounterDecreased"):
        transact(owner, rep, "updateUser", member, 200, 119)
    assert info(rep, member)[1:3] == (150, 120)
    # The same values again change nothing and emit nothing (a re-sent update is harmless).
    receipt = transact(owner, rep, "updateUser", member, 150, 120)
    assert events(rep, receipt, "UserUpdated") == []


def test_member_with_zero_counters_still_exists(owner, rep):
    member = rid()
    transact(owner, rep, "addUser", member, 0, 0)
    with reverts("UserExists"):
        transact(owner, rep, "addUser", member, 1, 1)
    transact(owner, rep, "updateUsers", [member], [4], [2])
    assert info(rep, member)[:3] == (True, 4, 2)
    assert rep.functions.userCount().call() == 1


# --- batches --------------------------------------------------------------------------------


def test_batch_creates_and_updates_with_one_event_each(owner, rep):
    known, new = rid(), rid()
    transact(owner, rep, "addUser", known, 1, 1)
    receipt = transact(owner, rep, "updateUsers", [known, new], [5, 7], [6, 8])
    assert events(rep, receipt, "UserUpdated") == [{"id": known, "uploaded": 5, "downloaded": 6}]
    assert events(rep, receipt, "UserAdded") == [{"id": new, "uploaded": 7, "downloaded": 8}]
    assert info(rep, new)[:3] == (True, 7, 8)
    assert rep.functions.userCount().call() == 2


def test_batch_limits(owner, rep):
    assert rep.functions.MAX_BATCH().call() == MAX_BATCH == 100
    ids = [rid() for _ in range(MAX_BATCH + 1)]
    with reverts("BatchTooLarge"):
        transact(owner, rep, "updateUsers", ids, [1] * 101, [1] * 101)
    with reverts("EmptyBatch"):
        transact(owner, rep, "updateUsers", [], [], [])
    with reverts("LengthMismatch"):
        transact(owner, rep, "updateUsers", ids[:2], [1, 2], [1])
    receipt = transact(owner, rep, "updateUsers", ids[:100], [1] * 100, [2] * 100)
    assert len(events(rep, receipt, "UserAdded")) == 100


def test_batch_applies_entirely_or_not_at_all(owner, rep):
    a, b = rid(), rid()
    transact(owner, rep, "updateUsers", [a, b], [10, 10], [10, 10])
    with reverts("CounterDecreased"):
        transact(owner, rep, "updateUsers", [a, b], [20, 9], [20, 10])
    assert info(rep, a)[1:3] == (10, 10)  # a's increase was not applied either


def test_reverted_on_chain_transaction_is_not_success(owner, rep):
    """Hole 11: a mined transaction whose status is 0 must read as a failure."""
    ids = [rid() for _ in range(20)]
    with pytest.raises(TransactionReverted):
        transact(owner, rep, "updateUsers", ids, [1] * 20, [1] * 20, gas_limit=120_000)
    assert rep.functions.userCount().call() == 0


# --- access control and ownership -----------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "args"),
    [
        ("addUser", (b"\1" * 32, 1, 1)),
        ("updateUser", (b"\1" * 32, 1, 1)),
        ("updateUsers", ([b"\1" * 32], [1], [1])),
        ("migrateUserData", (b"\1" * 32,)),
        ("approveSuccessor", ("0x" + "11" * 20, True)),
        ("setOffchainDataUrl", ("https://evil.example",)),
        ("transferOwnership", ("0x" + "11" * 20,)),
    ],
)
def test_only_the_owner_writes(stranger, rep, function, args):
    """Hole 1/11: nobody but the site's account writes records."""
    with reverts("NotOwner"):
        transact(stranger, rep, function, *args)


def test_two_step_ownership_transfer(owner, stranger, rep):
    receipt = transact(owner, rep, "transferOwnership", stranger.address)
    assert events(rep, receipt, "OwnershipTransferStarted")[0]["newOwner"] == stranger.address
    assert rep.functions.owner().call() == owner.address  # not yet
    with reverts("NotPendingOwner"):
        transact(owner, rep, "acceptOwnership")
    receipt = transact(stranger, rep, "acceptOwnership")
    assert events(rep, receipt, "OwnershipTransferred") == [
        {"previousOwner": owner.address, "newOwner": stranger.address}
    ]
    assert rep.functions.owner().call() == stranger.address
    with reverts("NotOwner"):
        transact(owner, rep, "addUser", rid(), 1, 1)
    transact(stranger, rep, "addUser", rid(), 1, 1)


def test_offchain_data_url(owner, rep):
    receipt = transact(owner, rep, "setOffchainDataUrl", "https://tracker.example.org/chain")
    assert events(rep, receipt, "OffchainDataUrlSet") == [
        {"url": "https://tracker.example.org/chain"}
    ]
    assert rep.functions.offchainDataUrl().call() == "https://tracker.example.org/chain"


# --- migration through the referrer chain ---------------------------------------------------


@pytest.fixture
def lineage(owner, stranger, other_site, factory):
    """Three generations: A (root, dev 0) <- B (dev 1) <- C (dev 2), no endorsements yet."""
    a = create_reputation(owner, factory, ZERO)
    b = create_reputation(stranger, factory, a.address)
    c = create_reputation(other_site, factory, b.address)
    return a, b, c


def test_migration_over_two_hops_needs_every_endorsement(owner, stranger, other_site, lineage):
    a, b, c = lineage
    member = rid()
    transact(owner, a, "addUser", member, 40 * GIB, 10 * GIB)
    with reverts("NotApprovedSuccessor"):
        transact(other_site, c, "migrateUserData", member)
    receipt = transact(stranger, b, "approveSuccessor", c.address, True)
    assert events(b, receipt, "SuccessorApproved") == [{"successor": c.address, "approved": True}]
    with pytest.raises(TransactionReverted, match=f"NotApprovedSuccessor\\(hop={a.address}"):
        transact(other_site, c, "migrateUserData", member)
    transact(owner, a, "approveSuccessor", b.address, True)
    assert c.functions.findInReferrers(member).call() == [a.address, 40 * GIB, 10 * GIB]
    receipt = transact(other_site, c, "migrateUserData", member)
    assert events(c, receipt, "UserMigrated") == [
        {
            "id": member,
            "source": a.address,
            "importedUploaded": 40 * GIB,
            "importedDownloaded": 10 * GIB,
            "uploaded": 40 * GIB,
            "downloaded": 10 * GIB,
        }
    ]
    assert info(c, member)[:3] == (True, 40 * GIB, 10 * GIB)
    assert info(c, member)[4] == a.address
    assert c.functions.getUserData(member).call() == [member, 10 * GIB, 40 * GIB]
    # Once per member.
    with reverts("AlreadyMigrated"):
        transact(other_site, c, "migrateUserData", member)


def test_migration_takes_the_nearest_record_and_adds_local_figures(
    owner, stranger, other_site, lineage
):
    a, b, c = lineage
    transact(owner, a, "approveSuccessor", b.address, True)
    transact(stranger, b, "approveSuccessor", c.address, True)
    member = rid()
    transact(owner, a, "addUser", member, 1, 1)
    transact(stranger, b, "addUser", member, 500, 300)  # B is nearer and newer
    transact(other_site, c, "addUser", member, 5, 7)  # C pushed before the member migrated
    transact(other_site, c, "migrateUserData", member)
    assert info(c, member)[:3] == (True, 505, 307)
    assert info(c, member)[4] == b.address
    assert c.functions.userCount().call() == 1
    transact(other_site, c, "updateUsers", [member], [506], [307])
    with reverts("CounterDecreased"):
        transact(other_site, c, "updateUsers", [member], [500], [300])


def test_migration_refusals(owner, stranger, other_site, lineage, rep):
    a, b, c = lineage
    transact(owner, a, "approveSuccessor", b.address, True)
    transact(stranger, b, "approveSuccessor", c.address, True)
    with reverts("NotFoundInReferrers"):
        transact(other_site, c, "migrateUserData", rid())
    with reverts("NoReferrer"):
        transact(owner, rep, "migrateUserData", rid())
    # Endorsement withdrawn: the path is closed again.
    member = rid()
    transact(owner, a, "addUser", member, 1, 1)
    transact(owner, a, "approveSuccessor", b.address, False)
    with reverts("NotApprovedSuccessor"):
        transact(other_site, c, "migrateUserData", member)


def test_anyone_may_create_a_reputation_but_not_inherit_a_site(owner, stranger, factory, rep):
    """Hole 11: "anyone can create a Reputation". A stranger's contract naming our contract as
    referrer is registered under the stranger's name, is not endorsed, and cannot copy our
    members' records (the original let anyone migrate anyone, openly)."""
    member = rid()
    transact(owner, rep, "addUser", member, 9 * GIB, GIB)
    rogue = create_reputation(stranger, factory, rep.address)
    assert factory.functions.registry(rogue.address).call()[0] == stranger.address
    assert not factory.functions.isEndorsed(rogue.address).call()
    with reverts("NotApprovedSuccessor"):
        transact(stranger, rogue, "migrateUserData", member)
    assert info(rogue, member)[0] is False
    # The site endorses a real successor: the registry says so.
    successor = create_reputation(owner, factory, rep.address)
    transact(owner, rep, "approveSuccessor", successor.address, True)
    assert factory.functions.isEndorsed(successor.address).call()


def test_no_password_material_or_names_on_chain():
    """Hole 11: the original stored user names, salts and password hashes in public state."""
    for name in ("Reputation", "ReputationFactory"):
        spec = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
        text = json.dumps(spec["abi"]).lower()
        for word in ("password", "salt", "username", "string id"):
            assert word not in text, (name, word)
    # Records are keyed by keccak256(48-byte BLS public key): 32 bytes, not a name.
    key = secrets.token_bytes(48)
    assert record_id(key) == Web3.keccak(key)
    with pytest.raises(ValueError):
        record_id(b"alice")
