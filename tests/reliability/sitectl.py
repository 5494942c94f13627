"""Set up data in a private site's database, as a separate process with that site's settings
(``python -m tests.reliability.sitectl COMMAND '{"option": ...}'``; the environment comes from
``kit.site_env``). Prints one JSON object on its last line.

Commands:

- ``seed-tracker {"members": M, "torrents": T}``: the ``-TR4`` client prefix, M members and T
  approved torrents; prints their ids, passkeys and info_hashes.
- ``report-receipts {"downloaders": D, "pieces": P}``: an uploader and D downloaders with BLS
  keys, a torrent of P pieces (16 KiB) seen with all of them in its swarm, one receipt per
  piece and downloader signed by the downloader, reported by the uploader through
  ``report_submit`` (what ``POST /report`` calls), which queues the verification task on the
  site's Celery broker; prints what verification must credit (bytes per member).
- ``seed-chain {"members": N}``: deploys the factory and this site's Reputation contract on
  ``PBTS_CHAIN_RPC_URL`` and gives N members a BLS key and verified totals; prints each
  member's record id and totals (bytes).
- ``seed-api {"torrents": T, "chain": C}``: the seed data, a member and a moderator with API
  tokens, T approved torrents (and with C, the contracts on ``PBTS_CHAIN_RPC_URL``); prints
  the tokens.
- ``chain-credit {"add": BYTES}``: raises every member's verified upload and download by
  BYTES (as verification would); prints the new totals.
"""

from __future__ import annotations

import base64
import json
import sys

import django


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def seed_tracker(*, members: int, torrents: int) -> dict:
    """Members with passkeys and approved torrents (ids, passkeys, hex info_hashes)."""
    from tracker.models import ClientPrefix
    from tracker.services.members import member_create
    from tracker.tests.torrents import upload_torrent

    ClientPrefix.objects.get_or_create(prefix="-TR4", defaults={"name": "Transmission 4"})
    made = [member_create(username=f"rel{i:05d}") for i in range(members)]
    files = [upload_torrent(made[i % len(made)], name=f"rel-{i}.bin") for i in range(torrents)]
    return {
        "members": [{"id": m.pk, "passkey": m.passkey} for m in made],
        "torrents": [{"id": t.pk, "info_hash": t.info_hash} for t in files],
    }


def report_receipts(*, downloaders: int, pieces: int) -> dict:
    """One uploader, ``downloaders`` downloaders, one receipt per piece and downloader."""
    from receipts.services.reports import SingleInput, report_submit
    from receipts.tests.conftest import make_actor, make_receipt, seen
    from tracker.tests.torrents import upload_torrent

    piece = 16_384
    uploader = make_actor()
    torrent = upload_torrent(uploader.member, size=piece * pieces, piece_length=piece)
    seen(uploader.member, torrent)
    actors = [make_actor() for _ in range(downloaders)]
    expected: dict[int, list[int]] = {uploader.member.pk: [0, 0]}
    reports = []
    for actor in actors:
        seen(actor.member, torrent)
        expected[actor.member.pk] = [0, 0]
        entries = []
        for index in range(pieces):
            data = make_receipt(uploader, actor, torrent, index=index, length=piece)
            entries.append(SingleInput(receipt=_b64(data), signature=_b64(actor.sign(data))))
            expected[uploader.member.pk][0] += piece
            expected[actor.member.pk][1] += piece
        detail = report_submit(reporter=uploader.member, receipts=entries)
        assert detail.report.queued == pieces, detail.report.refused
        reports.append(detail.report.pk)
    return {
        "receipts": downloaders * pieces,
        "reports": reports,
        "verified": {str(k): v for k, v in expected.items()},
    }


def seed_chain(*, members: int) -> dict:
    """Contracts on the configured chain, and ``members`` keyed members with totals."""
    from chain.contracts import record_id
    from chain.tests.sitekit import credit, keyed_member, set_up_contracts

    factory, reputation = set_up_contracts()
    out = []
    for i in range(members):
        keyed = keyed_member(username=f"chain{i:05d}")
        up, down = 1_000_000 + 1_000 * i, 500_000 + 7 * i
        credit(keyed.member, up, down)
        out.append({"id": keyed.member.pk, "record": record_id(keyed.pk).hex(), "up": up,
                    "down": down})  # fmt: skip
    return {"factory": factory, "reputation": reputation, "members": out}


def chain_credit(*, add: int) -> dict:
    """Every ledger's verified figures raised by ``add`` bytes; the new totals."""
    from django.db.models import F

    from reputation.models import Ledger

    Ledger.objects.update(
        verified_uploaded=F("verified_uploaded") + add,
        verified_downloaded=F("verified_downloaded") + add,
    )
    rows = Ledger.objects.values_list("member_id", "verified_uploaded", "verified_downloaded")
    return {"totals": {str(m): [u, d] for m, u, d in rows}}


def seed_api(*, torrents: int = 3, chain: bool = False) -> dict:
    """The seed data (categories, clients, pages), a member and a moderator (staff) with API
    tokens, and ``torrents`` approved torrents of the member's; their tokens and ids. With
    ``chain``, also this site's contracts on the configured chain."""
    from django.core.management import call_command
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from chain.tests.sitekit import set_up_contracts
    from tracker.services.members import member_api_token, member_create
    from tracker.tests.torrents import upload_torrent

    call_command("seed", verbosity=0)
    member = member_create(username="alice", email="alice@example.org")
    staff = member_create(username="moderator", email="mod@example.org", is_staff=True)
    # Staff tokens open staff endpoints only for staff with two-factor authentication
    # (PBTS_STAFF_REQUIRE_2FA, on as in production): the moderator has set it up.
    TOTPDevice.objects.create(user=staff, name="fuzz", confirmed=True)
    made = [upload_torrent(member, name=f"api-{i}.bin") for i in range(torrents)]
    if chain:
        set_up_contracts()
    return {
        "member": {"id": member.pk, "token": member_api_token(member)},
        "staff": {"id": staff.pk, "token": member_api_token(staff)},
        "torrents": [t.pk for t in made],
    }


COMMANDS = {
    "seed-api": seed_api,
    "seed-tracker": seed_tracker,
    "report-receipts": report_receipts,
    "seed-chain": seed_chain,
    "chain-credit": chain_credit,
}


def main(argv: list[str]) -> int:
    """Run ``argv[0]`` with the JSON options of ``argv[1]``; print the JSON result."""
    django.setup()
    result = COMMANDS[argv[0]](**json.loads(argv[1] if len(argv) > 1 else "{}"))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
