"""Sending transactions safely: one sender at a time (a lease in the database), nonces read from
the chain only when no transaction of ours is open, a record written before every broadcast,
and reconciliation by transaction hash after a crash or an outage.

The rules (docs/chain.md, "Never twice, never lost"):

1. Every sender first takes the lease (:func:`chain_lease`, a conditional UPDATE of the
   ``ChainConfig`` row). Two workers never hold it together, so they never pick the same nonce.
2. Under the lease, :func:`tx_reconcile` settles every open record (``pending``/``sent``) by its
   hash: a receipt finalizes it; a transaction the node does not know is re-broadcast from the
   stored signed bytes (same nonce, same hash: it can only ever be mined once); a nonce taken by
   something else fails the record. While one is still unmined, nothing new is sent.
3. Only then is a nonce read (``eth_getTransactionCount(pending)``), the transaction signed, its
   record (hash, nonce, raw bytes) committed, and the bytes broadcast.
4. A receipt with status 0 fails the record with the decoded reason: never shown as success.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from web3 import Web3

from chain.client import (
    ChainClient,
    ChainError,
    ChainNotConfigured,
    ChainUnavailable,
    InsufficientFunds,
    NonceTooLow,
    NotOwner,
    Receipt,
    SignedTx,
    TransactionPending,
    WrongChain,
)
from chain.models import (
    OPEN_TX,
    ChainConfig,
    ChainStatus,
    Migration,
    PushBatch,
    SentTransaction,
    TxStatus,
)
from chain.selectors import chain_config

log = logging.getLogger(__name__)
T = TypeVar("T")

LEASE_SECONDS = 300
"""How long a sender's lease lasts without renewal (seconds); longer than a receipt wait."""

Finalizer = Callable[[SentTransaction, Receipt | None, str, ChainClient], None]
FINALIZERS: dict[type[SentTransaction], Finalizer] = {}
"""Per record type, what to do once a transaction is mined or failed: called inside the
transaction that marks the record (receipt None and a reason when it failed unmined)."""


class ChainBusy(ChainError):
    """Another worker holds the sender lease; try again later."""

    status = "busy"


class LeaseLost(ChainError):
    """This worker's lease expired and another took it: stop before sending anything."""

    status = "busy"


# --- configuration and status ------------------------------------------------------------


def chain_client() -> ChainClient:
    """A client for ``PBTS_CHAIN_RPC_URL`` and the account of ``PBTS_CHAIN_PRIVATE_KEY``.

    Raises:
        ChainNotConfigured: either setting is empty or the key is invalid.
    """
    return ChainClient(
        settings.PBTS_CHAIN_RPC_URL,
        settings.PBTS_CHAIN_PRIVATE_KEY,
        request_timeout=10.0,
        retries=3,
    )


def status_record(status: str, detail: str = "") -> None:
    """Store the site's last word about the chain (admin, ``/contract/status``)."""
    if status == "busy":
        return
    ChainConfig.objects.filter(pk=1).update(
        status=status, status_detail=detail[:2000], checked_at=timezone.now()
    )


def chain_check(client: ChainClient, config: ChainConfig, *, need_contract: bool = True) -> int:
    """Check the endpoint before writing; returns its chain id.

    Raises:
        ChainUnavailable: no answer.
        WrongChain: the endpoint's chain id differs from ``PBTS_CHAIN_ID`` or from the chain
            the contracts were deployed on.
        ChainNotConfigured: ``need_contract`` and no contract, or no code at its address (for
            example a development chain that was reset).
        NotOwner: the account does not own the Reputation contract.
    """
    chain_id = client.chain_id()
    expected = config.chain_id or settings.PBTS_CHAIN_ID or None
    if settings.PBTS_CHAIN_ID and config.chain_id and config.chain_id != settings.PBTS_CHAIN_ID:
        raise WrongChain(
            f"PBTS_CHAIN_ID is {settings.PBTS_CHAIN_ID} but the contracts live on chain "
            f"{config.chain_id}"
        )
    if expected is not None and chain_id != expected:
        raise WrongChain(f"the RPC endpoint serves chain {chain_id}; expected chain {expected}")
    if need_contract:
        if not config.reputation_address:
            raise ChainNotConfigured(
                "No Reputation contract yet: run `manage.py chain_create_reputation`."
            )
        if not client.code_at(config.reputation_address):
            raise ChainNotConfigured(
                f"No contract at {config.reputation_address} on chain {chain_id} (was the "
                "chain reset?)"
            )
        owner = client.call(
            client.contract("Reputation", config.reputation_address).functions.owner()
        )
        if owner != client.address:
            raise NotOwner(
                f"account {client.address} does not own {config.reputation_address} (owner {owner})"
            )
    return chain_id


# --- the lease ------------------------------------------------------------------------------


@contextmanager
def chain_lease(*, seconds: int = LEASE_SECONDS) -> Iterator[str]:
    """Hold the sender lease for the block; yields its token.

    Raises:
        ChainBusy: another worker holds it (and it has not expired).
    """
    chain_config()
    token = secrets.token_hex(16)
    now = timezone.now()
    taken = (
        ChainConfig.objects.filter(pk=1)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_owner=token, lease_until=now + timedelta(seconds=seconds))
    )
    if not taken:
        raise ChainBusy("another worker is sending to the chain; try again shortly")
    try:
        yield token
    finally:
        ChainConfig.objects.filter(pk=1, lease_owner=token).update(lease_owner="", lease_until=None)


def lease_renew(token: str, *, seconds: int = LEASE_SECONDS) -> None:
    """Extend the lease; call before every broadcast.

    Raises:
        LeaseLost: the lease expired and someone else holds it now.
    """
    renewed = ChainConfig.objects.filter(pk=1, lease_owner=token).update(
        lease_until=timezone.now() + timedelta(seconds=seconds)
    )
    if not renewed:
        raise LeaseLost("the sender lease was lost; nothing was sent")


def chain_work(
    work: Callable[[ChainClient, ChainConfig, str], T], *, need_contract: bool = True
) -> T:
    """Run ``work(client, config, lease_token)`` under the lease, after the endpoint checks and
    the reconciliation of open transactions. Chain errors are recorded as the chain status and
    re-raised; a success clears a transient status (a reverted one stays until a transaction
    confirms).

    Raises:
        ChainNotConfigured, ChainBusy, ChainUnavailable, WrongChain, NotOwner,
        InsufficientFunds, TransactionPending, ChainError: see :mod:`chain.client`.
    """
    client = chain_client()
    with chain_lease() as token:
        config = chain_config()
        try:
            chain_check(client, config, need_contract=need_contract)
            tx_reconcile(client=client, token=token)
            result = work(client, config, token)
        except ChainError as exc:
            status_record(exc.status, exc.message)
            raise
        ChainConfig.objects.filter(pk=1).exclude(status=ChainStatus.REVERTED).update(
            status=ChainStatus.OK, status_detail="", checked_at=timezone.now()
        )
        return result


# --- sending ----------------------------------------------------------------------------------


def tx_send(
    *,
    client: ChainClient,
    config: ChainConfig,
    token: str,
    to: str,
    data: str | bytes,
    persist: Callable[[SignedTx], SentTransaction],
    gas_limit: int | None = None,
) -> SentTransaction:
    """Sign a call, record it, broadcast it and wait for its receipt.

    ``persist(signed)`` writes the record (with its items) and returns it; it runs in one
    database transaction that commits before anything is broadcast. After the broadcast the
    record is ``sent``; with a receipt it is finalized. A receipt not arriving within
    ``PBTS_CHAIN_RECEIPT_TIMEOUT`` leaves it ``sent`` for the next run's reconciliation; an
    unreachable endpoint leaves it ``pending`` (re-broadcast later, same bytes).

    Raises:
        TransactionReverted: the simulation reverted (nothing was signed or recorded).
        InsufficientFunds: balance too low, checked before signing or refused by the node (the
            record, if any, is failed: its nonce was not used).
        ChainUnavailable: the endpoint failed (the record stays ``pending``).
        TransactionPending: no receipt in time (the record stays ``sent``).
    """
    nonce = client.nonce("pending")
    signed = client.prepare(
        to=to,
        data=data,
        nonce=nonce,
        chain_id=int(config.chain_id or client.chain_id()),
        gas_limit=gas_limit,
    )
    with transaction.atomic():
        record = persist(signed)
        _fill(record, signed, config)
        record.save()
    lease_renew(token)
    _broadcast(client, record)
    return _await(client, record)


def _fill(record: SentTransaction, signed: SignedTx, config: ChainConfig) -> None:
    record.chain_id = config.chain_id
    record.nonce = signed.nonce
    record.tx_hash = signed.tx_hash
    record.raw_tx = signed.raw
    record.gas_limit = signed.gas_limit
    record.max_fee = signed.max_fee
    record.tx_status = TxStatus.PENDING
    if isinstance(record, Migration):
        record.status = TxStatus.PENDING


def _broadcast(client: ChainClient, record: SentTransaction) -> None:
    """Broadcast the stored bytes; ``sent`` on success. A refusal that proves the nonce unused
    (no funds) fails the record; an outage leaves it ``pending``."""
    try:
        client.send_raw(bytes(record.raw_tx))
    except (InsufficientFunds, NonceTooLow) as exc:
        with transaction.atomic():
            _finish(record, None, exc.message, client, status=TxStatus.FAILED)
        raise
    except ChainUnavailable:
        raise
    except ChainError as exc:
        with transaction.atomic():
            _finish(record, None, exc.message, client, status=TxStatus.FAILED)
        raise
    record.tx_status = TxStatus.SENT
    record.broadcasts += 1
    record.sent_at = record.sent_at or timezone.now()
    fields = ["tx_status", "broadcasts", "sent_at", "updated_at"]
    if isinstance(record, Migration):
        record.status = TxStatus.SENT
        fields.append("status")
    record.save(update_fields=fields)


def _await(client: ChainClient, record: SentTransaction) -> SentTransaction:
    receipt = client.wait_receipt(
        bytes(record.tx_hash), timeout=settings.PBTS_CHAIN_RECEIPT_TIMEOUT
    )
    tx_finalize(client, record, receipt)
    return record


def tx_finalize(client: ChainClient, record: SentTransaction, receipt: Receipt) -> None:
    """Mark ``record`` from its receipt: ``confirmed`` (status 1) or ``failed`` with the
    decoded revert reason (status 0), and run its type's finalizer, in one transaction."""
    reason = ""
    if not receipt.ok and record.gas_limit and receipt.gas_used >= record.gas_limit:
        reason = f"out of gas (used all {receipt.gas_used} gas of the limit)"
    elif not receipt.ok:
        tx = {
            "from": client.address,
            "to": Web3.to_checksum_address(record.contract_address),
            "data": _calldata(client, record),
            "gas": record.gas_limit,
        }
        reason = client.revert_reason(tx, receipt.block_number)
    with transaction.atomic():
        _finish(
            record,
            receipt,
            reason,
            client,
            status=TxStatus.CONFIRMED if receipt.ok else TxStatus.FAILED,
        )
    if not receipt.ok:
        status_record(ChainStatus.REVERTED, f"{record}: {reason}")
        log.warning("chain transaction %s reverted: %s", record.tx_hash_hex, reason)


def _calldata(client: ChainClient, record: SentTransaction) -> str:
    """The calldata of a stored signed transaction (to replay it for its revert reason)."""
    from eth_account.typed_transactions import TypedTransaction
    from hexbytes import HexBytes

    decoded = TypedTransaction.from_bytes(HexBytes(bytes(record.raw_tx))).as_dict()
    data = decoded.get("data", b"")
    return data if isinstance(data, str) else "0x" + bytes(data).hex()


def _finish(
    record: SentTransaction,
    receipt: Receipt | None,
    reason: str,
    client: ChainClient,
    *,
    status: str,
) -> None:
    """Inside a transaction: lock and re-read the record (a concurrent reconcile may have
    finalized it), set its outcome and call its finalizer once."""
    fresh = type(record).objects.select_for_update().get(pk=record.pk)
    if fresh.tx_status not in OPEN_TX:
        record.tx_status = fresh.tx_status
        return
    record.tx_status = status
    record.error = reason[:2000]
    record.finished_at = timezone.now()
    fields = ["tx_status", "error", "finished_at", "updated_at"]
    if receipt is not None:
        record.block_number = receipt.block_number
        record.gas_used = receipt.gas_used
        fields += ["block_number", "gas_used"]
    if isinstance(record, Migration):
        record.status = status
        fields.append("status")
    record.save(update_fields=fields)
    finalizer = FINALIZERS.get(type(record))
    if finalizer is not None:
        finalizer(record, receipt, reason, client)
    if receipt is not None and receipt.ok:
        ChainConfig.objects.filter(pk=1).update(
            status=ChainStatus.OK, status_detail="", checked_at=timezone.now()
        )


def open_transactions() -> list[SentTransaction]:
    """Every ``pending``/``sent`` record of every type, oldest nonce first."""
    found: list[SentTransaction] = [
        *PushBatch.objects.filter(tx_status__in=OPEN_TX),
        *Migration.objects.filter(tx_status__in=OPEN_TX),
    ]
    return sorted(found, key=lambda r: (r.nonce if r.nonce is not None else -1, r.created_at))


def tx_reconcile(*, client: ChainClient, token: str) -> int:
    """Settle the open records by hash (see the module docstring); returns how many are still
    open (then nothing new may be sent).

    Raises:
        ChainUnavailable: the endpoint failed (records keep their state).
    """
    remaining = open_transactions()
    while remaining:
        lease_renew(token)
        record = remaining[0]
        tx_hash = bytes(record.tx_hash)
        receipt = client.receipt(tx_hash)
        if receipt is None and not client.transaction_known(tx_hash):
            if client.nonce("latest") > int(record.nonce or 0):
                with transaction.atomic():
                    _finish(
                        record,
                        None,
                        "dropped: its nonce was used by another transaction",
                        client,
                        status=TxStatus.FAILED,
                    )
                remaining.pop(0)
                continue
            # Never reached a node (crash or outage before the broadcast): same bytes again.
            _broadcast(client, record)
        try:
            if receipt is None:
                receipt = client.wait_receipt(tx_hash, timeout=settings.PBTS_CHAIN_RECEIPT_TIMEOUT)
        except TransactionPending:
            return len(remaining)
        tx_finalize(client, record, receipt)
        remaining.pop(0)
    return 0
