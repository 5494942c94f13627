"""The leech verdict at the Django announce view counts imported reputation (a chain migration's
``Ledger.imported_*``) under the import policy: ``reputation.policy.site_figures``."""

from __future__ import annotations

import pytest
from django.test import override_settings

from reputation.models import Ledger
from reputation.services import ledger_credit_imported
from tracker import announce_runtime, authcache
from tracker.models import ClientPrefix
from tracker.tests.factories import MemberFactory
from tracker.tests.test_announce import Clock, announce
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db
GIB = 1024**3
REFUSED = b"failure reason"


@pytest.fixture
def leecher(monkeypatch):
    """A torrent and a member whose own figures (1 GiB up / 10 GiB down, ratio 0.10) are below
    MIN_RATIO 0.5 past the grace allowance (0 here)."""
    monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime(clock=Clock()))
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    torrent = upload_torrent(MemberFactory())
    member = MemberFactory()
    Ledger.objects.filter(member=member).update(uploaded=GIB, downloaded=10 * GIB)
    return torrent, member


def verdict(client, member, torrent) -> dict:
    authcache.invalidate_passkey(member.passkey)  # the standing holds the computed figures
    return announce(client, member, torrent, left=500)


def test_imported_upload_lifts_the_refusal_and_the_cap_and_switch_limit_it(
    client, leecher, settings
):
    # The settings fixture only: an override_settings decorator as well would be restored
    # first, and the fixture's later changes would then restore its values for the whole run.
    settings.MIN_RATIO = 0.5
    settings.PBTS_RATIO_GRACE_BYTES = 0
    settings.PBTS_IMPORTED_UPLOAD_COUNTS = True
    settings.PBTS_IMPORTED_DOWNLOAD_COUNTS = True
    settings.PBTS_IMPORTED_UPLOAD_CAP_BYTES = 0
    torrent, member = leecher
    assert verdict(client, member, torrent) == {
        REFUSED: b"Downloading disabled: ratio 0.10 is below 0.50"
    }
    # A migration brought 20 GiB up / 2 GiB down: (1 + 20) / (10 + 2) = 1.75.
    ledger_credit_imported(member_id=member.pk, uploaded=20 * GIB, downloaded=2 * GIB)
    assert b"peers" in verdict(client, member, torrent)
    # A cap of 4 GiB counts 4 GiB up and 2 x 4/20 = 0.4 GiB down: 5 / 10.4 = 0.48, refused.
    settings.PBTS_IMPORTED_UPLOAD_CAP_BYTES = 4 * GIB
    assert verdict(client, member, torrent) == {
        REFUSED: b"Downloading disabled: ratio 0.48 is below 0.50"
    }
    # A cap of 5 GiB: 6 / 10.5 = 0.57, allowed.
    settings.PBTS_IMPORTED_UPLOAD_CAP_BYTES = 5 * GIB
    assert b"peers" in verdict(client, member, torrent)
    # Imported upload switched off (no cap), imported download still counted: 1 / 12 = 0.08.
    settings.PBTS_IMPORTED_UPLOAD_CAP_BYTES = 0
    settings.PBTS_IMPORTED_UPLOAD_COUNTS = False
    assert verdict(client, member, torrent) == {
        REFUSED: b"Downloading disabled: ratio 0.08 is below 0.50"
    }


@override_settings(MIN_RATIO=0.5, PBTS_RATIO_GRACE_BYTES=0, PBTS_IMPORTED_UPLOAD_CAP_BYTES=0)
def test_a_bad_imported_history_sinks_a_good_own_ratio(client, leecher):
    torrent, member = leecher
    Ledger.objects.filter(member=member).update(uploaded=6 * GIB, downloaded=10 * GIB)
    assert b"peers" in verdict(client, member, torrent)
    ledger_credit_imported(member_id=member.pk, uploaded=0, downloaded=10 * GIB)
    assert verdict(client, member, torrent) == {
        REFUSED: b"Downloading disabled: ratio 0.30 is below 0.50"
    }
