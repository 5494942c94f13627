"""Pushing members' verified totals to the Reputation contract in batches.

A member is pushed while the ledger's imported + verified figures differ from what the contract
holds (``chain.selectors.ledgers_waiting_for_push``); nothing marks the ledger. Each batch is one
``updateUsers`` transaction of at most 100 members carrying *absolute* totals (bytes). Absolute
values make a re-sent batch a no-op on chain, and the contract refuses any decrease. Once the
receipt confirms, the members' ``pushed_*`` hold the sent figures; a change made meanwhile
still differs from them and is pushed next time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from chain.client import ChainClient, Receipt, SignedTx, TransactionReverted
from chain.contracts import MAX_BATCH, record_id
from chain.models import (
    ChainConfig,
    ChainMember,
    PushBatch,
    PushItem,
    SentTransaction,
    TxStatus,
)
from chain.services.transactions import FINALIZERS, chain_work, tx_send
from chain.waiting import ledgers_waiting_for_push
from core.errors import InvalidInput
from receipts.models import BLSKey
from tracker.models import Member

MAX_FAILURES = 3
"""Consecutive failed batches after which a member is blocked (staff unblock in admin)."""
MAX_SIMULATION_RETRIES = 5
"""Members dropped from one batch for deterministic reverts before the batch gives up."""


@dataclass
class PushResult:
    """What one push run did: the batches sent (each ``confirmed``, ``failed`` or still
    ``sent``) and the members blocked by a deterministic revert."""

    batches: list[PushBatch] = field(default_factory=list)
    blocked: list[int] = field(default_factory=list)

    @property
    def pushed(self) -> int:
        """Members in confirmed batches."""
        return sum(b.size for b in self.batches if b.tx_status == "confirmed")

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {
            "batches": [
                {
                    "id": b.pk,
                    "members": b.size,
                    "status": b.tx_status,
                    "tx_hash": b.tx_hash_hex,
                    "block": b.block_number,
                    "gas_used": b.gas_used,
                    "error": b.error,
                }
                for b in self.batches
            ],
            "pushed": self.pushed,
            "blocked": self.blocked,
        }


def batch_size() -> int:
    """``PBTS_CHAIN_BATCH_SIZE`` clamped to [1, 100] (the contract's ``MAX_BATCH``)."""
    return max(1, min(int(settings.PBTS_CHAIN_BATCH_SIZE), MAX_BATCH))


def chain_member_for(member_id: int) -> ChainMember | None:
    """The member's on-chain record row, created from their active BLS key on first use; None
    when they have neither."""
    existing = ChainMember.objects.filter(member_id=member_id).first()
    if existing is not None:
        return existing
    key = BLSKey.objects.filter(member_id=member_id, revoked_at__isnull=True).first()
    if key is None:
        return None
    try:
        with transaction.atomic():
            return ChainMember.objects.create(
                member_id=member_id,
                record_id=record_id(bytes(key.public_key)),
                public_key=bytes(key.public_key),
            )
    except IntegrityError:
        return ChainMember.objects.filter(member_id=member_id).first()


@dataclass
class _Entry:
    chain_member: ChainMember
    uploaded: int
    downloaded: int


def _block(chain_member: ChainMember, reason: str) -> None:
    ChainMember.objects.filter(pk=chain_member.pk).update(
        is_blocked=True, last_error=reason[:2000], updated_at=timezone.now()
    )


def _collect(limit: int, member_ids: list[int] | None, result: PushResult) -> list[_Entry]:
    """The next batch's entries; members whose site totals fell below the chain's are
    blocked instead (counters never decrease on chain)."""
    entries: list[_Entry] = []
    for ledger in ledgers_waiting_for_push(member_ids=member_ids)[: limit * 2]:
        if len(entries) >= limit:
            break
        chain_member = chain_member_for(ledger.member_id)
        if chain_member is None:
            continue
        up = ledger.imported_uploaded + ledger.verified_uploaded
        down = ledger.imported_downloaded + ledger.verified_downloaded
        if up < chain_member.pushed_uploaded or down < chain_member.pushed_downloaded:
            _block(
                chain_member,
                f"site totals ({up}, {down} bytes) are below the contract's "
                f"({chain_member.pushed_uploaded}, {chain_member.pushed_downloaded}); "
                "counters never decrease on chain",
            )
            result.blocked.append(ledger.member_id)
            continue
        entries.append(_Entry(chain_member, up, down))
    return entries


def _send_batch(
    client: ChainClient, config: ChainConfig, token: str, entries: list[_Entry], result: PushResult
) -> PushBatch | None:
    """Simulate, drop members whose update would revert deterministically, then send."""
    contract = client.contract("Reputation", config.reputation_address)
    for _ in range(MAX_SIMULATION_RETRIES):
        if not entries:
            return None
        data = client.call_data(
            contract,
            "updateUsers",
            [bytes(e.chain_member.record_id) for e in entries],
            [e.uploaded for e in entries],
            [e.downloaded for e in entries],
        )

        def persist(signed: SignedTx, entries: list[_Entry] = entries) -> PushBatch:
            batch = PushBatch.objects.create(
                size=len(entries),
                contract_address=config.reputation_address,
                tx_status=TxStatus.PENDING,
            )
            PushItem.objects.bulk_create(
                [
                    PushItem(
                        batch=batch,
                        member_id=e.chain_member.member_id,
                        record_id=bytes(e.chain_member.record_id),
                        uploaded=e.uploaded,
                        downloaded=e.downloaded,
                    )
                    for e in entries
                ]
            )
            return batch

        try:
            batch = tx_send(
                client=client,
                config=config,
                token=token,
                to=config.reputation_address,
                data=data,
                persist=persist,
            )
        except TransactionReverted as exc:
            culprit = _culprit(exc, entries)
            if culprit is None:
                raise
            _block(culprit.chain_member, exc.reason)
            result.blocked.append(culprit.chain_member.member_id)
            entries = [e for e in entries if e is not culprit]
            continue
        assert isinstance(batch, PushBatch)
        result.batches.append(batch)
        return batch
    return None


def _culprit(exc: TransactionReverted, entries: list[_Entry]) -> _Entry | None:
    """The member a ``CounterDecreased(id=...)``/``ZeroId`` revert names, if any."""
    if exc.name not in ("CounterDecreased", "UserExists", "UnknownUser"):
        return None
    for entry in entries:
        if f"0x{bytes(entry.chain_member.record_id).hex()}" in exc.reason:
            return entry
    return None


def members_push(*, max_batches: int = 10, member_ids: list[int] | None = None) -> PushResult:
    """Push changed members now: up to ``max_batches`` transactions of at most
    ``PBTS_CHAIN_BATCH_SIZE`` (<= 100) members each, one after another under the sender lease.

    Args:
        max_batches: transactions in this run at most (the beat runs again soon).
        member_ids: restrict to these members (staff ``/contract/update``).

    Returns:
        The batches sent and their outcome (a reverted batch is ``failed``, never success).

    Raises:
        ChainNotConfigured, ChainBusy, ChainUnavailable, WrongChain, NotOwner,
        InsufficientFunds, TransactionPending: see :func:`chain_work`.
    """

    def work(client: ChainClient, config: ChainConfig, token: str) -> PushResult:
        result = PushResult()
        for _ in range(max_batches):
            entries = _collect(batch_size(), member_ids, result)
            if not entries:
                break
            batch = _send_batch(client, config, token, entries, result)
            if batch is None or batch.tx_status != "confirmed":
                break
        return result

    return chain_work(work)


def member_mark_for_push(*, member: Member) -> None:
    """Make sure ``member`` has an on-chain record row, so the next push writes them if the
    contract does not hold their figures yet (staff ``/contract/register``/``update``).

    Raises:
        InvalidInput: the member has no BLS key and no on-chain record (field ``username``).
    """
    if chain_member_for(member.pk) is None:
        raise InvalidInput(
            f"{member.username} has no BLS key: the contract keys members by the keccak256 of "
            "their BLS public key.",
            field="username",
        )


def chain_member_unblock(*, chain_member: ChainMember) -> None:
    """Let a blocked member be pushed again (failures reset)."""
    ChainMember.objects.filter(pk=chain_member.pk).update(
        is_blocked=False, failures=0, last_error="", updated_at=timezone.now()
    )


def _push_finalize(
    record: SentTransaction, receipt: Receipt | None, reason: str, client: ChainClient
) -> None:
    """A batch is mined or failed: confirmed members get their new totals; members of a batch
    mined with status 0 count a failure (blocked at ``MAX_FAILURES``)."""
    now = timezone.now()
    items = list(PushItem.objects.filter(batch=record))
    if receipt is not None and receipt.ok:
        for item in items:
            ChainMember.objects.filter(member_id=item.member_id).update(
                pushed_uploaded=item.uploaded,
                pushed_downloaded=item.downloaded,
                pushed_at=now,
                failures=0,
                last_error="",
                updated_at=now,
            )
        return
    if receipt is None:
        return  # refused or dropped before mining: not the members' fault; they still differ
    member_ids = [item.member_id for item in items]
    ChainMember.objects.filter(member_id__in=member_ids).update(
        failures=F("failures") + 1, last_error=f"push {record.pk} failed: {reason}"[:2000]
    )
    ChainMember.objects.filter(member_id__in=member_ids, failures__gte=MAX_FAILURES).update(
        is_blocked=True
    )


FINALIZERS[PushBatch] = _push_finalize
