"""Portable reputation: a member imports their record from this site's predecessors.

1. :func:`migration_challenge`: the site issues a random 32-byte challenge for the member's
   active BLS key (the key the previous site knew: the record id is its keccak256).
2. The member signs :func:`migration_message` on their own machine with that key
   (``python -m chain.sign_migration`` or any BLS library; ciphersuite
   ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``), and :func:`migration_submit` checks the
   signature. The message names the chain, this contract, the record and the challenge, so a
   signature is good for one request on one site only (a proof of possession, public on the old
   site, is not enough: anyone could replay it).
3. :func:`migration_send` calls ``migrateUserData(recordId)`` as the contract's owner; the
   contract copies the nearest record up the referrer chain through endorsed hops only.

No password material anywhere: the original stored salted password hashes on chain (hole 11).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from celery import current_app
from django.db import IntegrityError, transaction
from django.utils import timezone

from chain.client import ChainClient, Receipt, SignedTx, TransactionReverted
from chain.contracts import record_id
from chain.models import (
    ChainConfig,
    ChainMember,
    Migration,
    MigrationStatus,
    SentTransaction,
)
from chain.selectors import chain_config, chain_is_configured, migration_message_for
from chain.services.transactions import FINALIZERS, chain_work, tx_send
from core.errors import Conflict, InvalidInput, NotFound
from receipts.models import SIGNATURE_BYTES, BLSKey
from receipts.site import bls_backend
from reputation.services import ledger_credit_imported
from tracker import authcache
from tracker.models import Member

CHALLENGE_BYTES = 32
CHALLENGE_SECONDS = 15 * 60
"""How long a challenge may be answered (seconds)."""
IN_FLIGHT = (MigrationStatus.QUEUED, MigrationStatus.PENDING, MigrationStatus.SENT)


def _ready_config() -> ChainConfig:
    if not chain_is_configured():
        raise InvalidInput("The chain is not configured on this site.")
    config = chain_config()
    if not config.reputation_address or not config.chain_id:
        raise InvalidInput("This site has no Reputation contract yet.")
    if not config.referrer_address:
        raise InvalidInput(
            "This site's contract has no predecessor (referrer): there is nothing to import."
        )
    return config


@transaction.atomic
def migration_challenge(*, member: Member, requested_by: Member | None = None) -> Migration:
    """Issue a challenge for ``member``'s active BLS key.

    Raises:
        InvalidInput: no chain, contract or referrer; no active BLS key (field ``public_key``).
        Conflict: already migrated, a request in flight, or the member's record here is keyed
            by another key.
    """
    config = _ready_config()
    Member.objects.select_for_update().only("pk").get(pk=member.pk)
    key = BLSKey.objects.filter(member=member, revoked_at__isnull=True).first()
    if key is None:
        raise InvalidInput(
            "Register the BLS key your previous site knew first (POST /register).",
            field="public_key",
        )
    record = record_id(bytes(key.public_key))
    existing = ChainMember.objects.filter(member=member).first()
    if existing is not None and bytes(existing.record_id) != record:
        raise Conflict(
            "Your record on this site's contract is keyed by another BLS key; a migration "
            "imports into the record of the key that signs it.",
            field="public_key",
        )
    taken = ChainMember.objects.filter(record_id=record).exclude(member=member).exists()
    if taken:
        raise Conflict("This key's record belongs to another member here.", field="public_key")
    if member.chain_migrations.filter(status=MigrationStatus.CONFIRMED).exists():
        raise Conflict("Your reputation was already imported.")
    if member.chain_migrations.filter(status__in=IN_FLIGHT).exists():
        raise Conflict("A migration of yours is already on its way.")
    member.chain_migrations.filter(status=MigrationStatus.CHALLENGED).update(
        status=MigrationStatus.EXPIRED
    )
    return Migration.objects.create(
        member=member,
        requested_by=requested_by or member,
        public_key=bytes(key.public_key),
        record_id=record,
        challenge=secrets.token_bytes(CHALLENGE_BYTES),
        chain_id=config.chain_id,
        contract_address=config.reputation_address,
        expires_at=timezone.now() + timedelta(seconds=CHALLENGE_SECONDS),
    )


def migration_submit(*, member: Member, migration_id: int, signature: bytes) -> Migration:
    """Check the member's signature of the challenge and queue the migration (the Celery task
    ``chain.send_migration`` sends it after the commit).

    Args:
        member: whose migration it is (the caller, or the member staff act for).
        migration_id: the challenge's id.
        signature: 96-byte BLS signature of :func:`migration_message_for`.

    Raises:
        NotFound: no such challenge for this member.
        InvalidInput: expired, already answered, key revoked since, or a bad signature (field
            ``signature``).
    """
    signature = bytes(signature)
    with transaction.atomic():
        migration = (
            Migration.objects.select_for_update().filter(pk=migration_id, member=member).first()
        )
        if migration is None:
            raise NotFound("No such migration challenge.")
        if migration.status != MigrationStatus.CHALLENGED:
            raise InvalidInput(f"This challenge was already answered ({migration.status}).")
        if migration.expires_at <= timezone.now():
            migration.status = MigrationStatus.EXPIRED
            migration.save(update_fields=["status", "updated_at"])
            raise InvalidInput("This challenge expired; ask for a new one.")
        still_active = BLSKey.objects.filter(
            member=member, public_key=bytes(migration.public_key), revoked_at__isnull=True
        ).exists()
        if not still_active:
            raise InvalidInput("The key this challenge names is no longer your active key.")
        if len(signature) != SIGNATURE_BYTES or not _verifies(migration, signature):
            raise InvalidInput(
                "The signature does not verify for your key and this challenge.",
                field="signature",
            )
        migration.signature = signature
        migration.status = MigrationStatus.QUEUED
        try:
            with transaction.atomic():
                migration.save(update_fields=["signature", "status", "updated_at"])
        except IntegrityError as exc:
            raise Conflict("A migration of yours is already on its way.") from exc
        transaction.on_commit(lambda: _enqueue(migration.pk))
    return migration


def _verifies(migration: Migration, signature: bytes) -> bool:
    try:
        return bool(
            bls_backend().verify(
                bytes(migration.public_key), migration_message_for(migration), signature
            )
        )
    except Exception:  # malformed input is a failed check, never a 500
        return False


SEND_TASK = "chain.send_migration"


def _enqueue(migration_id: int) -> None:
    """Queue the ``chain.send_migration`` task (``chain/tasks.py``), found by name in the
    Celery app's registry: the tasks module imports this one, never the other way round."""
    current_app.tasks[SEND_TASK].delay(migration_id=migration_id)


def migrations_send(*, migration_ids: list[int] | None = None) -> list[Migration]:
    """Send queued migrations (all, or ``migration_ids``), one transaction each, under the
    sender lease. A migration the contract would refuse (not endorsed, not found, already
    migrated) fails with the decoded reason and nothing is sent.

    Raises:
        ChainNotConfigured, ChainBusy, ChainUnavailable, WrongChain, NotOwner,
        InsufficientFunds, TransactionPending: see :func:`chain_work`; queued migrations then
        stay queued for the next run.
    """

    def work(client: ChainClient, config: ChainConfig, token: str) -> list[Migration]:
        queue = Migration.objects.filter(status=MigrationStatus.QUEUED).order_by("created_at")
        if migration_ids is not None:
            queue = queue.filter(pk__in=migration_ids)
        done: list[Migration] = []
        contract = client.contract("Reputation", config.reputation_address)
        for migration in queue:
            if migration.contract_address != config.reputation_address:
                _fail_unsent(migration, "the site's contract changed since the request")
                done.append(migration)
                continue
            data = client.call_data(contract, "migrateUserData", bytes(migration.record_id))
            try:
                sent = tx_send(
                    client=client,
                    config=config,
                    token=token,
                    to=config.reputation_address,
                    data=data,
                    persist=lambda signed, m=migration: _persist(m, signed),
                )
            except TransactionReverted as exc:
                _fail_unsent(migration, exc.reason)
                done.append(migration)
                continue
            assert isinstance(sent, Migration)
            done.append(sent)
        return done

    return chain_work(work)


def _persist(migration: Migration, signed: SignedTx) -> Migration:
    fresh = Migration.objects.select_for_update().get(pk=migration.pk)
    if fresh.status != MigrationStatus.QUEUED:
        raise Conflict("This migration was handled meanwhile.")
    return fresh


def _fail_unsent(migration: Migration, reason: str) -> None:
    Migration.objects.filter(pk=migration.pk, status=MigrationStatus.QUEUED).update(
        status=MigrationStatus.FAILED,
        error=f"refused by the contract (nothing sent): {reason}"[:2000],
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )
    migration.refresh_from_db()


def _migration_finalize(
    record: SentTransaction, receipt: Receipt | None, reason: str, client: ChainClient
) -> None:
    """A migration is mined: read ``UserMigrated`` and record what was imported (the figures
    in the member's ledger, through ``reputation.services``); the member's on-chain row then
    holds imported + verified as pushed."""
    assert isinstance(record, Migration)
    if receipt is None or not receipt.ok:
        return
    contract = client.contract("Reputation", record.contract_address)
    event = contract.events.UserMigrated()
    found = None
    for log in receipt.logs:
        if log["address"].lower() == record.contract_address.lower():
            try:
                found = event.process_log(log)["args"]
                break
            except Exception:
                continue
    if found is None:  # cannot happen for a status-1 migrateUserData; never claim success
        record.tx_status = record.status = MigrationStatus.FAILED
        record.error = "mined, but no UserMigrated event"
        record.save(update_fields=["tx_status", "status", "error", "updated_at"])
        return
    now = timezone.now()
    record.source_address = found["source"]
    record.imported_uploaded = int(found["importedUploaded"])
    record.imported_downloaded = int(found["importedDownloaded"])
    record.save(
        update_fields=[
            "source_address",
            "imported_uploaded",
            "imported_downloaded",
            "updated_at",
        ]
    )
    chain_member, _ = ChainMember.objects.get_or_create(
        member_id=record.member_id,
        defaults={"record_id": bytes(record.record_id), "public_key": bytes(record.public_key)},
    )
    ledger_credit_imported(
        member_id=record.member_id,
        uploaded=record.imported_uploaded,
        downloaded=record.imported_downloaded,
    )
    # The imported figures count for the ratio rule (reputation.policy.site_figures): the
    # announce path's cached standing is dropped (trackerd's too, through the publication).
    passkey = Member.objects.filter(pk=record.member_id).values_list("passkey", flat=True).first()
    if passkey:
        authcache.invalidate_passkey(passkey)
    chain_member.imported_from = record.source_address
    chain_member.imported_at = now
    chain_member.pushed_uploaded = int(found["uploaded"])
    chain_member.pushed_downloaded = int(found["downloaded"])
    chain_member.pushed_at = now
    chain_member.save()


FINALIZERS[Migration] = _migration_finalize
