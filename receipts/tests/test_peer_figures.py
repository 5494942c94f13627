"""A PBTS seeder and a PBTS leecher on 127.0.0.1 through the live site (issue 13, part 4): once
the leecher has completed and the site has verified the seeder's report, every figure a member
or a moderator can read agrees.

- verified: the seeder's verified upload is exactly the bytes of the pieces whose receipts it
  holds (here every piece: it is the only source), the leecher's verified download the
  torrent's size;
- announced: after the statistics flush, the ledger's announced upload and download (the
  peers' own counters in their announces) equal the verified ones up to protocol overhead
  (blocks sent twice; none are expected with one seeder);
- shown: the member's profile (``/profile/``, its receipts block), a moderator's view of the
  member (``/members/<name>/``) and the API (``/api/v1/me/``: announced, ``/api/v1/chain/me``:
  verified, ``/api/v1/reports/``: credited bytes) show those figures; another member's view
  shows no verified figures (they are private).

``test_peer_transfer.py`` checks the transfer itself and the box; this one the figures.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from django.test import Client

from receipts.models import Receipt
from receipts.peer import metainfo
from receipts.services.verify import receipt_batch_verify
from receipts.tests.peer_helpers import PbtsPeer, write_files
from receipts.tests.swarm_helpers import (
    Site,
    box_path,
    box_rows,
    launcher,
    live_site,
    member_torrent,
    pbts_member,
    pieces_once,
    random_files,
    receipt_options,
    runtime_module,
    upload,
    workdir,
)
from reputation.models import Ledger
from tracker.templatetags.tracker_extras import filesize
from tracker.tests.factories import MemberFactory

pytestmark = [pytest.mark.realclient, pytest.mark.django_db(transaction=True)]

PIECE = 32 * 1024
FILES = [("a.bin", 1_500_000), ("sub/b.bin", 700_001)]
SIZE = sum(size for _, size in FILES)
BLOCK = 16 * 1024
OVERHEAD = max(SIZE // 50, 4 * BLOCK)
"""Announced minus verified bytes allowed: blocks sent twice or of pieces never completed."""
TIMEOUT = 120.0


@pytest.fixture
def site(live_server, settings, monkeypatch):
    with live_site(live_server, settings, monkeypatch) as value:
        yield value


@pytest.fixture
def launch():
    with launcher() as start:
        yield start


def api(site: Site, path: str, token: str) -> dict:
    request = urllib.request.Request(
        f"{site.url}{path}", headers={"Authorization": f"Token {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def verified_block(html: str) -> tuple[str, str]:
    """(verified uploaded, verified downloaded) as the receipts block prints them."""
    start = html.index('<h2 id="receipts-heading">')
    block = html[start : html.index("</section>", start)]

    def figure(label: str) -> str:
        at = block.index(f"<dt>{label}</dt><dd>") + len(f"<dt>{label}</dt><dd>")
        return block[at : block.index("</dd>", at)]

    return figure("Verified uploaded"), figure("Verified downloaded")


def transfer_block(html: str) -> tuple[str, str]:
    """(uploaded, downloaded) as the profile's transfer block prints them (announced)."""
    start = html.index('<h2 id="transfer-heading">')
    block = html[start : html.index("</section>", start)]

    def figure(label: str) -> str:
        at = block.index(f"<dt>{label}</dt><dd>") + len(f"<dt>{label}</dt><dd>")
        return block[at : block.index("</dd>", at)]

    return figure("Uploaded"), figure("Downloaded")


def page(member, path: str) -> str:
    browser = Client()
    browser.force_login(member)
    response = browser.get(path, follow=True)
    assert response.status_code == 200, path
    return response.content.decode()


def test_verified_announced_and_shown_figures_agree(site: Site, launch, tmp_path: Path):
    began = time.monotonic()
    seeder = pbts_member(site.url, tmp_path)
    leecher = pbts_member(site.url, tmp_path)
    moderator = MemberFactory(is_staff=True)
    bystander = MemberFactory()
    files = random_files(7, FILES)
    torrent = upload(seeder.member, files, name="figures", piece=PIECE)
    seed_file = member_torrent(tmp_path, torrent, seeder.member, "seeder")
    pieces = metainfo.load(seed_file).piece_count

    seed = PbtsPeer(
        command="seed",
        torrent=seed_file,
        workdir=workdir(tmp_path, "seeder"),
        extra=receipt_options(site.url, seeder),
        token=seeder.token,
    )
    write_files(seed.download_dir, "figures", files, single=False)
    launch(seed)
    seed.wait_seeding(timeout=60)
    leech = PbtsPeer(
        command="download",
        torrent=member_torrent(tmp_path, torrent, leecher.member, "leecher"),
        workdir=workdir(tmp_path, "leecher"),
        extra=[*receipt_options(site.url, leecher), "--seed-ratio", "0"],
        token=leecher.token,
    )
    launch(leech)
    done = leech.wait_exit(timeout=TIMEOUT)
    context = f"{site.announces.dump()}\n{leech.describe()}\n{seed.describe()}"
    assert done["reason"] == "done" and done["left"] == 0, context
    for path, data in files:
        assert (leech.download_dir / "figures" / path).read_bytes() == data, path
    transferred = time.monotonic() - began

    # The seeder's stop: the flush has seen both members, the last report goes out.
    assert runtime_module.flush_now()
    seed.stop()
    final = seed.last("exit")
    assert final["all_reported"] and final["receipts_accepted"] == pieces, seed.describe()
    receipt_batch_verify()

    # Verified: exactly the pieces the leecher got from the seeder (all of them).
    kept = [r for r, _, _ in box_rows(box_path(seed))]
    assert pieces_once(kept) == dict.fromkeys(range(pieces), 1)
    assert {(r.uploader_pk, r.downloader_pk) for r in kept} == {
        (client_pk(seeder), client_pk(leecher))
    }
    from_seeder = sum(r.piece_length for r in kept)
    assert from_seeder == SIZE
    assert done["receipts_signed"] == pieces == done["receipts_acked"]
    s_ledger = Ledger.objects.get(member=seeder.member)
    l_ledger = Ledger.objects.get(member=leecher.member)
    assert (s_ledger.verified_uploaded, s_ledger.verified_downloaded) == (from_seeder, 0)
    assert (l_ledger.verified_uploaded, l_ledger.verified_downloaded) == (0, SIZE)
    rows = Receipt.objects.filter(report__reporter=seeder.member)
    assert rows.filter(status="verified", is_credited=True).count() == pieces == rows.count()

    # Announced: the peers' own counters, flushed to the ledger, agree within the overhead.
    assert runtime_module.flush_now() is not None
    s_ledger.refresh_from_db()
    l_ledger.refresh_from_db()
    announced_up = s_ledger.uploaded
    announced_down = l_ledger.downloaded
    assert announced_up == final["uploaded"] and announced_down == done["downloaded"], context
    assert 0 <= announced_up - s_ledger.verified_uploaded <= OVERHEAD, (announced_up, context)
    assert 0 <= announced_down - l_ledger.verified_downloaded <= OVERHEAD, announced_down
    assert (s_ledger.downloaded, l_ledger.uploaded) == (0, 0)

    # Shown: the members' own profiles, a moderator's view, the API.
    size_text, zero = filesize(SIZE), filesize(0)
    for member, verified, announced in (
        (seeder.member, (size_text, zero), (filesize(announced_up), zero)),
        (leecher.member, (zero, size_text), (zero, filesize(announced_down))),
    ):
        own = page(member, "/profile/")
        assert verified_block(own) == verified, member.username
        assert transfer_block(own) == announced, member.username
        staff_view = page(moderator, f"/members/{member.username}/")
        assert verified_block(staff_view) == verified, member.username
        assert transfer_block(staff_view) == announced, member.username
        assert 'id="receipts-heading"' not in page(bystander, f"/members/{member.username}/")

    me = api(site, "/api/v1/me/", seeder.token)
    assert (me["uploaded"], me["downloaded"]) == (announced_up, 0)
    me = api(site, "/api/v1/me/", leecher.token)
    assert (me["uploaded"], me["downloaded"]) == (0, announced_down)
    chain = api(site, "/api/v1/chain/me", seeder.token)
    assert (chain["verified_uploaded"], chain["verified_downloaded"]) == (SIZE, 0)
    chain = api(site, "/api/v1/chain/me", leecher.token)
    assert (chain["verified_uploaded"], chain["verified_downloaded"]) == (0, SIZE)
    reports = api(site, "/api/v1/reports/", seeder.token)
    listed = reports["results"] if isinstance(reports, dict) else reports
    assert sum(r["credited_bytes"] for r in listed) == SIZE
    assert sum(r["verified"] for r in listed) == pieces
    print(
        f"figures: {pieces} pieces, {SIZE} bytes; transfer {transferred:.1f} s;"
        f" announced up {announced_up} down {announced_down}; verified {SIZE}"
    )


def client_pk(who) -> bytes:
    from receipts.client import load_key_file

    return load_key_file(who.key).pk
