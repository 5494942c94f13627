"""The events that notify a member today: torrent moderation and an invite used."""

from __future__ import annotations

import pytest

from core.errors import NotPermitted
from core.models import Notification
from tracker.models import TorrentStatus
from tracker.services.members import invite_create, member_register
from tracker.services.torrents import torrent_moderate
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db


def test_rejection_tells_the_uploader_with_the_reason():
    uploader, staff = MemberFactory(), MemberFactory(is_staff=True)
    torrent = upload_torrent(uploader, name="album")
    torrent_moderate(torrent=torrent, actor=staff, status="rejected", reason="Bad rip")
    (n,) = Notification.objects.filter(member=uploader)
    assert n.kind == "torrent_rejected"
    assert "album" in n.subject and "Bad rip" in n.body
    assert n.url == f"/torrents/{torrent.pk}/"
    assert not Notification.objects.filter(member=staff).exists()


def test_approval_tells_the_uploader_once():
    uploader, staff = MemberFactory(), MemberFactory(is_staff=True)
    torrent = upload_torrent(uploader, name="pending one")
    torrent.status = TorrentStatus.PENDING
    torrent.save(update_fields=["status"])
    torrent_moderate(torrent=torrent, actor=staff, status="approved")
    torrent_moderate(torrent=torrent, actor=staff, status="approved")  # no change: no notice
    kinds = list(Notification.objects.filter(member=uploader).values_list("kind", flat=True))
    assert kinds == ["torrent_approved"]


def test_deleted_torrent_notice_has_no_link():
    uploader, staff = MemberFactory(), MemberFactory(is_staff=True)
    torrent = upload_torrent(uploader)
    torrent_moderate(torrent=torrent, actor=staff, status="deleted", reason="Dupe")
    (n,) = Notification.objects.filter(member=uploader)
    assert (n.kind, n.url) == ("torrent_deleted", "")


def test_staff_moderating_their_own_torrent_get_no_notice():
    staff = MemberFactory(is_staff=True)
    torrent = upload_torrent(staff)
    torrent_moderate(torrent=torrent, actor=staff, status="rejected", reason="oops")
    assert not Notification.objects.exists()


def test_refused_moderation_sends_nothing():
    uploader, other = MemberFactory(), MemberFactory()
    torrent = upload_torrent(uploader)
    with pytest.raises(NotPermitted):  # not staff
        torrent_moderate(torrent=torrent, actor=other, status="rejected", reason="x")
    assert not Notification.objects.exists()


def test_invite_used_tells_the_inviter():
    inviter = MemberFactory(is_staff=True)
    invite = invite_create(inviter=inviter)
    member = member_register(
        invite_code=invite.code,
        username="newbie",
        email="newbie@example.org",
        password="correct horse battery staple 42",
    )
    (n,) = Notification.objects.filter(member=inviter)
    assert n.kind == "invite_used" and "newbie" in n.subject
    assert n.url == "/members/newbie/"
    assert not Notification.objects.filter(member=member).exists()
