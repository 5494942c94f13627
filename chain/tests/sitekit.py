"""Helpers of the site-level chain tests: a site configured against anvil (settings and
contracts), members with BLS keys and verified totals."""

from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import dataclass

from django.test import override_settings
from django.utils import timezone

from chain.devnet import Anvil
from chain.services.deploy import factory_adopt, factory_deploy, reputation_create
from receipts.bls import keygen, pop_prove, sign
from receipts.models import BLSKey
from reputation.models import Ledger
from tracker.models import Member
from tracker.tests.factories import MemberFactory

_seq = itertools.count(1)


@dataclass
class KeyedMember:
    """A member with a BLS key pair (``sk`` int, ``pk`` 48 bytes)."""

    member: Member
    sk: int
    pk: bytes

    def sign(self, message: bytes) -> bytes:
        return sign(self.sk, message)


def new_keypair() -> tuple[int, bytes]:
    """A fresh key pair (different on every call)."""
    seed = hashlib.sha256(f"pbts-chain-test-{next(_seq)}-{time.time_ns()}".encode()).digest()
    return keygen(seed)


def keyed_member(*, keypair: tuple[int, bytes] | None = None, **kwargs: object) -> KeyedMember:
    """A member whose active BLS key is stored directly (the key services are tested in the
    receipts app)."""
    member = MemberFactory(**kwargs)
    sk, pk = keypair or new_keypair()
    BLSKey.objects.create(member=member, public_key=pk, pop=pop_prove(sk))
    return KeyedMember(member=member, sk=sk, pk=pk)


def credit(member: Member, uploaded: int, downloaded: int) -> None:
    """Set the member's verified totals (bytes), as receipt verification would leave them."""
    Ledger.objects.get_or_create(member=member)
    Ledger.objects.filter(member=member).update(
        verified_uploaded=uploaded, verified_downloaded=downloaded, updated_at=timezone.now()
    )


def unpublished() -> set[int]:
    """Members whose ledger figures (imported + verified, bytes) the contract does not hold
    yet by the site's own record (``ChainMember.pushed_*``), open batches included."""
    waiting = set()
    for ledger in Ledger.objects.select_related("member__chain_record"):
        up = ledger.imported_uploaded + ledger.verified_uploaded
        down = ledger.imported_downloaded + ledger.verified_downloaded
        record = getattr(ledger.member, "chain_record", None)
        if record is None:
            if up or down:
                waiting.add(ledger.member_id)
        elif record.pushed_at is None or (record.pushed_uploaded, record.pushed_downloaded) != (
            up,
            down,
        ):
            waiting.add(ledger.member_id)
    return waiting


def chain_settings(node: Anvil, account: int = 0, **extra: object) -> override_settings:
    """Settings pointing the site at ``node`` with anvil dev account ``account`` (a public dev
    key from anvil's own config file: tests only)."""
    return override_settings(
        PBTS_CHAIN_RPC_URL=node.url,
        PBTS_CHAIN_PRIVATE_KEY=node.dev_private_key(account),
        PBTS_CHAIN_RECEIPT_TIMEOUT=10.0,
        **extra,
    )


def set_up_contracts(*, factory: str = "", referrer: str = "") -> tuple[str, str]:
    """Deploy a factory (or adopt ``factory``) and create the site's Reputation with
    ``referrer``; returns (factory, reputation) addresses."""
    factory = factory_adopt(address=factory) if factory else factory_deploy()
    reputation = reputation_create(referrer=referrer)
    return factory, reputation
