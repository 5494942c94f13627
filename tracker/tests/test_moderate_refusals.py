"""``torrent_moderate`` refuses a banned or deactivated moderator itself (not only the pages
and the API in front of it), and the torrent is left as it was."""

from __future__ import annotations

import pytest

from core.errors import NotPermitted
from core.models import AuditLog
from tracker.models import Member, TorrentStatus
from tracker.services.torrents import torrent_moderate
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("change", "words"),
    [({"is_banned": True}, "banned"), ({"is_active": False}, "Only staff")],
)
def test_a_banned_or_inactive_moderator_cannot_moderate(change, words):
    torrent = upload_torrent(MemberFactory())
    staff = MemberFactory(is_staff=True)
    Member.objects.filter(pk=staff.pk).update(**change)
    staff.refresh_from_db()
    with pytest.raises(NotPermitted, match=words):
        torrent_moderate(torrent=torrent, actor=staff, status="deleted", reason="spam")
    torrent.refresh_from_db()
    assert torrent.status == TorrentStatus.APPROVED
    assert not AuditLog.objects.filter(action="torrent_deleted").exists()


def test_a_moderator_in_good_standing_still_moderates():
    torrent = upload_torrent(MemberFactory())
    staff = MemberFactory(is_staff=True)
    result = torrent_moderate(torrent=torrent, actor=staff, status="deleted", reason="spam")
    assert result.status == TorrentStatus.DELETED
