"""SIGKILL of the Celery worker during a statistics flush, during receipt verification and
during a chain push, each followed by a restart: compared with the announces and receipts
actually sent, nothing is lost and nothing is counted twice.

Each test runs a private site (private PostgreSQL and Redis, ``tests/reliability/world.py``),
a real worker (``celery -A pbts_site worker -P solo``) that stops at a chosen point of the task
(``tests/reliability/hooked_worker.py``), kills it there with SIGKILL, starts a plain worker
and lets the task run again.
"""

from __future__ import annotations

import random
import time

from chain.client import ChainClient
from chain.devnet import Anvil
from tests.reliability.figures import record
from tests.reliability.kit import wait_until
from tests.reliability.world import Announcer, Swarms


def _announce(site, seed, swarms: Swarms, count: int) -> None:
    """``count`` announces through a fresh trackerd, stopped (SIGTERM) afterwards so that
    every credit is in Redis."""
    trackerd, port = site.trackerd()
    client = Announcer(port)
    try:
        for _ in range(count):
            swarms.step(client)
    finally:
        client.close()
        assert trackerd.stop() == 0, trackerd.log()
    assert swarms.counts.bad == 0, (swarms.counts.failures, swarms.counts.errors)


def _flush_lock_released(site, killed_at: float) -> float:
    """The killed flush's lock (a PostgreSQL session advisory lock) ends with its connection:
    returns the seconds from the kill until it was free (it held flushes back 300 s when it
    was a cache lock)."""
    wait_until(lambda: not site.flush_lock_held(), timeout=10, what="flush lock released")
    return round(time.monotonic() - killed_at, 2)


def test_sigkill_during_a_statistics_flush_loses_nothing_and_counts_nothing_twice(make_site):
    site = make_site()
    seed = site.sitectl("seed-tracker", members=12, torrents=4)
    members = [m["id"] for m in seed["members"]]
    swarms = Swarms(seed, pairs=40, rng=random.Random(14))
    _announce(site, seed, swarms, 800)
    assert site.unclaimed_credits() > 0
    assert sum(up + down for up, down in swarms.book.ledger.values()) > 0

    # 1. Killed inside the flush's transaction: nothing was committed, the batch waits in Redis.
    worker = site.worker(pause="flush-before-commit")
    site.send("tracker.flush_stats")
    site.wait_paused(worker)
    assert all(v == (0, 0) for v in site.ledgers().values())
    assert site.flush_lock_held()
    worker.kill()
    lock_left = _flush_lock_released(site, time.monotonic())
    assert (site.pending_batches(), site.flushed_batches()) == (1, 0)
    assert all(v == (0, 0) for v in site.ledgers().values())
    site.worker()
    site.flush_until_settled()
    assert swarms.book.differences(site, members) == []
    assert site.flushed_batches() == 1
    site.close()

    # 2. Killed after the commit, before the batch is forgotten: the re-run is a no-op.
    _announce(site, seed, swarms, 800)  # a new trackerd continues from the peers in Redis
    worker = site.worker(pause="flush-after-commit")
    site.send("tracker.flush_stats")
    site.wait_paused(worker)
    assert swarms.book.differences(site, members) == []  # committed
    worker.kill()
    lock_left_2 = _flush_lock_released(site, time.monotonic())
    assert site.pending_batches() == 1
    site.worker()
    site.flush_until_settled()
    assert swarms.book.differences(site, members) == []
    assert site.flushed_batches() == 2
    record(
        "kill-flush",
        announces=swarms.counts.sent,
        answered=swarms.counts.ok,
        members=len(members),
        credited_bytes=sum(u + d for u, d in swarms.book.ledger.values()),
        history_rows=len(swarms.book.history),
        batches_applied=site.flushed_batches(),
        lock_left_s=[lock_left, lock_left_2],
    )


def _receipts(site) -> dict[str, int]:
    rows = site.sql("SELECT status, count(*) FROM receipts_receipt GROUP BY status")
    return dict(rows)


def _verified(site) -> dict[str, list[int]]:
    rows = site.sql(
        "SELECT member_id, verified_uploaded, verified_downloaded FROM reputation_ledger"
        " WHERE verified_uploaded > 0 OR verified_downloaded > 0"
    )
    return {str(m): [u, d] for m, u, d in rows}


def test_sigkill_during_receipt_verification_credits_each_receipt_once(make_site):
    piece, batch = 16_384, 100
    site = make_site(PBTS_VERIFY_BATCH_SIZE=str(batch))
    worker = site.worker(pause="verify-before-commit", at=2)
    # Reporting queues the verification task; the worker verifies batch 1 (commits) and stops
    # inside batch 2's transaction.
    sent = site.sitectl("report-receipts", downloaders=2, pieces=150)
    site.wait_paused(worker)
    worker.kill()
    at_kill = _receipts(site)
    assert at_kill == {"verified": batch, "queued": sent["receipts"] - batch}
    credited = _verified(site)
    assert sum(up for up, _ in credited.values()) == batch * piece
    assert sum(down for _, down in credited.values()) == batch * piece
    site.worker()
    site.send("receipts.verify_receipts")
    wait_until(lambda: "queued" not in _receipts(site), timeout=60, what="receipts verified")
    assert _receipts(site) == {"verified": sent["receipts"]}
    assert _verified(site) == sent["verified"]
    reports = site.sql(
        "SELECT received, verified, refused, queued, credited_bytes, status FROM receipts_report"
    )
    assert sorted(reports) == [(150, 150, 0, 0, 150 * piece, "done")] * 2
    record(
        "kill-verify",
        receipts=sent["receipts"],
        batch=batch,
        verified_at_kill=at_kill["verified"],
        credited_bytes=sum(up for up, _ in sent["verified"].values()),
        verified_at_end=sent["receipts"],
    )


def _chain_state(site) -> list[tuple]:
    return site.sql("SELECT id, size, tx_status, nonce FROM chain_pushbatch ORDER BY id")


def _expire_lease(site) -> float:
    """The killed push left the sender lease; returns its remaining lifetime (s) and ends
    it, as its expiry would."""
    (left,) = site.sql(
        "SELECT extract(epoch FROM lease_until - now()) FROM chain_chainconfig"
        " WHERE lease_owner <> ''"
    )[0]
    site.sql("UPDATE chain_chainconfig SET lease_until = now()")
    return float(left)


def _all_pushed(site) -> bool:
    waiting = site.sql(
        "SELECT count(*) FROM reputation_ledger l LEFT JOIN chain_chainmember c"
        " ON c.member_id = l.member_id WHERE c.pushed_at IS NULL"
        " OR c.pushed_uploaded <> l.verified_uploaded + l.imported_uploaded"
        " OR c.pushed_downloaded <> l.verified_downloaded + l.imported_downloaded"
    )[0][0]
    open_batches = site.sql(
        "SELECT count(*) FROM chain_pushbatch WHERE tx_status IN ('pending', 'sent')"
    )[0][0]
    return waiting == 0 and open_batches == 0


def _on_chain(client: ChainClient, site, members: list[dict]) -> dict[str, tuple[int, int]]:
    address = site.sql("SELECT reputation_address FROM chain_chainconfig")[0][0]
    contract = client.contract("Reputation", address)
    found = {}
    for m in members:
        info = contract.functions.userInfo(bytes.fromhex(m["record"])).call()
        found[m["record"]] = (int(info[1]), int(info[2]))
    return found


def test_sigkill_during_a_chain_push_sends_each_batch_once(make_site):
    anvil = Anvil().start()
    try:
        key = anvil.dev_private_key(0)
        site = make_site(
            PBTS_CHAIN_RPC_URL=anvil.url,
            PBTS_CHAIN_PRIVATE_KEY=key,
            PBTS_CHAIN_BATCH_SIZE="20",
            PBTS_CHAIN_RECEIPT_TIMEOUT="10",
        )
        seed = site.sitectl("seed-chain", members=50)
        members = seed["members"]
        client = ChainClient(anvil.url, key, retries=2, request_timeout=5)
        nonce_at_start = client.nonce("latest")

        # 1. Killed after batch 2 was broadcast (and mined), before its receipt was recorded.
        worker = site.worker(pause="push-after-broadcast", at=2)
        site.send("chain.push_members")
        site.wait_paused(worker)
        worker.kill()
        assert [(s, st) for _, s, st, _ in _chain_state(site)] == [
            (20, "confirmed"),
            (20, "sent"),
        ]
        lease_left = _expire_lease(site)
        assert 0 < lease_left <= 300
        site.worker()
        site.send("chain.push_members")
        wait_until(lambda: _all_pushed(site), timeout=60, what="members pushed")
        batches = _chain_state(site)
        assert [(s, st) for _, s, st, _ in batches] == [(20, "confirmed")] * 2 + [(10, "confirmed")]
        # One transaction per batch: the killed batch was settled from its receipt, not re-sent.
        assert client.nonce("latest") == nonce_at_start + 3
        assert [n for *_, n in batches] == [nonce_at_start + i for i in range(3)]
        want = {m["record"]: (m["up"], m["down"]) for m in members}
        assert _on_chain(client, site, members) == want
        items = site.sql("SELECT member_id, count(*) FROM chain_pushitem GROUP BY member_id")
        assert sorted(c for _, c in items) == [1] * 50
        site.close()

        # 2. Killed after batch 1's record (signed bytes, nonce) committed, before broadcast.
        totals = site.sitectl("chain-credit", add=1_000)["totals"]
        worker = site.worker(pause="push-before-broadcast", at=1)
        site.send("chain.push_members")
        site.wait_paused(worker)
        worker.kill()
        assert _chain_state(site)[-1][1:3] == (20, "pending")
        assert client.nonce("latest") == nonce_at_start + 3  # nothing reached the chain
        lease_left_2 = _expire_lease(site)
        assert 0 < lease_left_2 <= 300
        site.worker()
        site.send("chain.push_members")
        wait_until(lambda: _all_pushed(site), timeout=60, what="members pushed")
        batches = _chain_state(site)[3:]
        assert [(s, st) for _, s, st, _ in batches] == [(20, "confirmed")] * 2 + [(10, "confirmed")]
        assert client.nonce("latest") == nonce_at_start + 6
        ids = {m["record"]: str(m["id"]) for m in members}
        assert _on_chain(client, site, members) == {r: tuple(totals[i]) for r, i in ids.items()}
        record(
            "kill-push",
            members=len(members),
            batch_size=20,
            batches=6,
            transactions=client.nonce("latest") - nonce_at_start,
            lease_left_s=[round(lease_left), round(lease_left_2)],
        )
    finally:
        anvil.close()
