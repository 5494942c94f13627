"""The moderation pages: the upload queue, reports, the member moderation page, the profile
blocks, the invite tree and the statistics page; who sees what; form errors."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.models import Notification
from moderation.models import MemberWarning, Report, ReportStatus, StaffNote
from moderation.services.notes import note_add
from moderation.services.reports import report_create
from moderation.services.warnings import warning_issue
from tracker.models import Member, TorrentStatus
from tracker.services.members import member_ban
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    return MemberFactory()


@pytest.fixture
def staff():
    return MemberFactory(is_staff=True)


STAFF_PAGES = ["moderation:queue", "moderation:report_list"]


def test_staff_pages_refuse_members_and_banned_staff(client, member, staff):
    urls = [reverse(name) for name in STAFF_PAGES] + [
        reverse("moderation:member", args=[member.username]),
        reverse("moderation:invite_tree", args=[member.username]),
    ]
    client.force_login(member)
    for url in urls:
        assert client.get(url).status_code == 403, url
    owner = MemberFactory(is_staff=True, is_superuser=True)
    member_ban(member=staff, actor=owner, reason="rogue")
    for url in urls:
        client.force_login(staff)  # each refusal also ends the banned member's session
        assert client.get(url).status_code == 403, url


def test_queue_lists_pending_oldest_first_and_approves_and_rejects(client, settings, staff):
    settings.PBTS_UPLOAD_APPROVAL = "staff"
    uploader = MemberFactory()
    first = upload_torrent(uploader, name="First.Pending")
    second = upload_torrent(uploader, name="Second.Pending")
    client.force_login(staff)
    body = client.get(reverse("moderation:queue")).content.decode()
    assert body.index("First.Pending") < body.index("Second.Pending")
    response = client.post(reverse("moderation:queue_approve", args=[first.pk]))
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.status == TorrentStatus.APPROVED
    # Rejecting needs a reason: a form error, nothing changed.
    response = client.post(reverse("moderation:queue_reject", args=[second.pk]), {"reason": ""})
    assert response.status_code == 400 and b"This field is required" in response.content
    second.refresh_from_db()
    assert second.status == TorrentStatus.PENDING
    client.post(reverse("moderation:queue_reject", args=[second.pk]), {"reason": "Wrong files."})
    second.refresh_from_db()
    assert second.status == TorrentStatus.REJECTED and second.moderation_reason == "Wrong files."
    queue = client.get(reverse("moderation:queue")).content.decode()
    assert reverse("torrent_detail", args=[second.pk]) not in queue
    # The uploader was told (core.notifications through torrent_moderate).
    assert Notification.objects.filter(member=uploader).count() == 2
    # A GET of a decision address changes nothing.
    assert client.get(reverse("moderation:queue_approve", args=[second.pk])).status_code == 405


def test_queue_is_paginated(client, settings, staff):
    settings.PBTS_UPLOAD_APPROVAL = "staff"
    for index in range(51):
        upload_torrent(staff, name=f"Queued.{index:02d}", size=1000 + index)
    client.force_login(staff)
    page1 = client.get(reverse("moderation:queue")).content.decode()
    page2 = client.get(reverse("moderation:queue") + "?page=2").content.decode()
    assert "Queued.00" in page1 and "Queued.50" not in page1
    assert "Queued.50" in page2


def test_member_reports_from_the_torrent_and_member_pages(client, member, staff):
    torrent = upload_torrent(staff, name="Reportable")
    client.force_login(member)
    report_url = reverse("moderation:report_torrent", args=[torrent.pk])
    assert report_url in client.get(reverse("torrent_detail", args=[torrent.pk])).content.decode()
    member_url = reverse("moderation:report_member", args=[staff.username])
    assert (
        member_url in client.get(reverse("member_detail", args=[staff.username])).content.decode()
    )
    bad = client.post(report_url, {"category": "", "text": ""})
    assert bad.status_code == 400 and b"This field is required" in bad.content
    too_long = client.post(report_url, {"category": "fake", "text": "x" * 2001})
    assert too_long.status_code == 400 and b"Too long" in too_long.content
    assert client.post(report_url, {"category": "fake", "text": "Fake."}).status_code == 302
    dup = client.post(report_url, {"category": "fake", "text": "Again."})
    assert dup.status_code == 400 and b"already have an open report" in dup.content
    assert client.post(member_url, {"category": "abuse", "text": "Rude."}).status_code == 302
    assert Report.objects.filter(reporter=member).count() == 2
    # Nobody reports a torrent they cannot see.
    hidden = upload_torrent(staff, name="Hidden")
    hidden.status = TorrentStatus.DELETED
    hidden.save()
    assert client.get(reverse("moderation:report_torrent", args=[hidden.pk])).status_code == 404


def test_staff_claim_and_resolve_on_the_report_page(client, member, staff):
    report = report_create(reporter=member, member=MemberFactory(), category="spam", text="Spam!")
    client.force_login(staff)
    listing = client.get(reverse("moderation:report_list")).content.decode()
    assert reverse("moderation:report_detail", args=[report.pk]) in listing
    url = reverse("moderation:report_detail", args=[report.pk])
    assert b"Spam!" in client.get(url).content
    client.post(url, {"action": "claim"})
    report.refresh_from_db()
    assert report.status == ReportStatus.CLAIMED
    bad = client.post(url, {"action": "close", "status": "resolved", "resolution": ""})
    assert bad.status_code == 400
    client.post(url, {"action": "close", "status": "resolved", "resolution": "Warned them."})
    report.refresh_from_db()
    assert report.status == ReportStatus.RESOLVED
    assert Notification.objects.get(member=member).kind == "report_resolved"


def test_a_member_cannot_resolve_on_the_report_page(client, member):
    report = report_create(reporter=MemberFactory(), member=member, category="spam", text="x")
    client.force_login(member)
    url = reverse("moderation:report_detail", args=[report.pk])
    assert (
        client.post(url, {"action": "close", "status": "dismissed", "resolution": "no"}).status_code
        == 403
    )
    report.refresh_from_db()
    assert report.status == ReportStatus.OPEN


def test_warnings_show_on_the_profile_to_the_member_and_staff_only(client, member, staff):
    warning_issue(member=member, actor=staff, reason="Seed your downloads.", days=5)
    client.force_login(member)
    assert "Seed your downloads." in client.get(reverse("profile")).content.decode()
    client.force_login(MemberFactory())
    assert (
        "Seed your downloads."
        not in client.get(reverse("member_detail", args=[member.username])).content.decode()
    )
    client.force_login(staff)
    assert (
        "Seed your downloads."
        in client.get(reverse("member_detail", args=[member.username])).content.decode()
    )


def test_staff_notes_never_reach_the_member(client, member, staff):
    note_add(member=member, author=staff, body="Secret staff note.")
    client.force_login(member)
    for url in (reverse("profile"), reverse("moderation:member", args=[member.username])):
        assert b"Secret staff note." not in client.get(url).content
    client.force_login(staff)
    assert (
        b"Secret staff note."
        in client.get(reverse("member_detail", args=[member.username])).content
    )


def test_member_moderation_page_warns_notes_and_locks(client, member, staff):
    client.force_login(staff)
    url = reverse("moderation:member", args=[member.username])
    bad = client.post(url, {"action": "warn", "reason": "x", "days": 0})
    assert bad.status_code == 400 and b"days" in bad.content
    assert client.post(url, {"action": "warn", "reason": "Stop.", "days": 3}).status_code == 302
    assert client.post(url, {"action": "note", "body": "Noted."}).status_code == 302
    assert client.post(url, {"action": "lock"}).status_code == 302
    assert MemberWarning.objects.filter(member=member).count() == 1
    assert StaffNote.objects.filter(member=member).count() == 1
    assert Member.objects.get(pk=member.pk).class_lock is not None
    warning = MemberWarning.objects.get(member=member)
    client.post(reverse("moderation:warning_revoke", args=[warning.pk]), {"reason": "ok"})
    warning.refresh_from_db()
    assert warning.revoked_at is not None
    # Staff cannot warn staff: a form error, not a 500.
    other = MemberFactory(is_staff=True)
    response = client.post(
        reverse("moderation:member", args=[other.username]),
        {"action": "warn", "reason": "x", "days": 3},
    )
    assert response.status_code == 400 and b"superuser" in response.content


def test_invite_tree_shows_chain_and_invitees(client, staff):
    root = MemberFactory()
    child = MemberFactory()
    grandchild = MemberFactory()
    Member.objects.filter(pk=child.pk).update(invited_by=root)
    Member.objects.filter(pk=grandchild.pk).update(invited_by=child)
    Member.objects.filter(pk=root.pk).update(invited_by=staff)
    client.force_login(staff)
    body = client.get(reverse("moderation:invite_tree", args=[root.username])).content.decode()
    assert staff.username in body and child.username in body and grandchild.username in body
    # A loop in the data does not hang the page.
    Member.objects.filter(pk=staff.pk).update(invited_by=grandchild)
    assert client.get(reverse("moderation:invite_tree", args=[root.username])).status_code == 200


def test_stats_page_for_members_cached(client, member, staff, settings):
    upload_torrent(staff)
    client.force_login(member)
    body = client.get(reverse("moderation:stats")).content.decode()
    assert "Site statistics" in body
    upload_torrent(staff)
    # Cached: the second torrent shows only after the cache entry expires.
    from moderation.selectors import STATS_CACHE_KEY, site_stats

    assert site_stats().torrents_total == 1
    from django.core.cache import cache

    cache.delete(STATS_CACHE_KEY)
    assert site_stats().torrents_total == 2
    client.logout()
    assert client.get(reverse("moderation:stats")).status_code == 302
