"""Celery tasks of the chain app. Both take the sender lease, so overlapping runs (beat firing
while a push is slow, or several workers) simply skip: the lease is the overlap guard.

Chain errors (RPC down, wrong chain, no funds, ...) are recorded as the chain status and the
task returns; the work waits in the database (dirty ledgers, queued migrations, open records)
and the next beat drains it.
"""

from __future__ import annotations

import logging

from celery import shared_task

from chain.client import ChainError
from chain.selectors import chain_is_configured
from chain.services.migration import migrations_send
from chain.services.push import members_push

log = logging.getLogger(__name__)


@shared_task(name="chain.push_members", ignore_result=True)
def push_members() -> str:
    """Beat task: send queued migrations, then push changed members (batches of at most 100).
    Returns a short outcome for logs: "not configured", "busy", a chain status, or counts."""
    if not chain_is_configured():
        return "not configured"
    try:
        migrations_send()
        result = members_push()
    except ChainError as exc:
        if exc.status != "busy":
            log.warning("chain push: %s", exc.message)
        return exc.status
    return f"pushed {result.pushed} in {len(result.batches)} batches"


@shared_task(name="chain.send_migration", ignore_result=True)
def send_migration(*, migration_id: int) -> str:
    """Send one queued migration now (enqueued after a member's signature checks out); if the
    chain is unavailable it stays queued and the beat task sends it later."""
    if not chain_is_configured():
        return "not configured"
    try:
        done = migrations_send(migration_ids=[migration_id])
    except ChainError as exc:
        return exc.status
    return done[0].status if done else "nothing queued"
