"""The hit-and-run rule (docs/hit-and-run.md): every snatch must be seeded, or shared back.

A snatch is a :class:`~tracker.models.TorrentHistory` row with ``completed_at``. Within
``PBTS_HNR_WINDOW_DAYS`` of ``completed_at`` the member must seed that torrent for
``PBTS_HNR_SEED_HOURS`` (the history's ``seed_seconds``) OR upload ``PBTS_HNR_RATIO`` times the
larger of what they downloaded of it and its size (so a freeleech snatch, which records no
download, is measured against the torrent's size). A snatch that meets neither once the window
and ``PBTS_HNR_GRACE_HOURS`` have passed is a hit-and-run; one that meets the rule later (the
member seeds again) becomes satisfied. The torrent's uploader, ratio-exempt members and
snatches of torrents no longer approved (nobody can seed them here) are exempt. Freeleech
torrents are not: freeleech waives the download, not the seeding.

Each snatch's state lives in :class:`~tracker.models.HitAndRun` (pending, satisfied,
hit-and-run, forgiven, exempt); the member's count of hit-and-runs in ``Member.hnr_count``. At
``PBTS_HNR_WARN_AFTER`` hit-and-runs the member is warned (a notification); at
``PBTS_HNR_DISABLE_AFTER`` ``Member.hnr_disabled`` is set and the announce rules refuse their
leech announces (``tracker.announce.rules.leech_refusal``); it is cleared when the count falls
below again. ``hnr_disabled`` is not ``can_download`` (the staff switch): lifting one never
lifts the other.

:func:`hnr_evaluate` (the Celery beat task ``tracker.evaluate_hit_and_runs``) judges every open
snatch in a few statements whatever their number, at the ``now`` it is given (tests drive the
clock); a second run at the same ``now`` changes nothing. Staff forgive one with
:func:`hnr_forgive` (audited).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from core.audit import audit_record
from core.bulksql import values_cte
from core.errors import Conflict
from core.notifications import notify
from tracker import authcache
from tracker.models import (
    HitAndRun,
    HitAndRunState,
    Member,
    Torrent,
    TorrentHistory,
    TorrentStatus,
)
from tracker.services.members import moderation_check

# One key for every writer of hit-and-run state (evaluation and forgiveness): they serialise,
# so two recounts of one member never interleave (PostgreSQL advisory lock).
_LOCK_KEY = 0x504254535F484E52  # "PBTS_HNR"
OPEN_STATES = (HitAndRunState.PENDING, HitAndRunState.HIT_AND_RUN)
NOTIFY_KIND = "hnr"


@dataclass(frozen=True, slots=True)
class HnrRule:
    """The rule's figures: ``seed_seconds`` (0: seeding time does not meet it), ``ratio``
    (0: the ratio does not meet it), ``window`` and ``grace`` (a snatch unmet after both is a
    hit-and-run), ``warn_after`` and ``disable_after`` (counts of hit-and-runs; 0: never)."""

    seed_seconds: int
    ratio: float
    window: timedelta
    grace: timedelta
    warn_after: int
    disable_after: int

    @classmethod
    def from_settings(cls) -> HnrRule:
        """The rule of the ``PBTS_HNR_*`` settings."""
        return cls(
            seed_seconds=max(0, round(settings.PBTS_HNR_SEED_HOURS * 3600)),
            ratio=max(0.0, float(settings.PBTS_HNR_RATIO)),
            window=timedelta(days=max(0.0, settings.PBTS_HNR_WINDOW_DAYS)),
            grace=timedelta(hours=max(0.0, settings.PBTS_HNR_GRACE_HOURS)),
            warn_after=max(0, settings.PBTS_HNR_WARN_AFTER),
            disable_after=max(0, settings.PBTS_HNR_DISABLE_AFTER),
        )

    def deadline(self, completed_at: datetime) -> datetime:
        """When a snatch completed at ``completed_at`` must meet the rule (window end)."""
        return completed_at + self.window

    def disables(self, count: int) -> bool:
        """Whether ``count`` hit-and-runs disable downloading."""
        return self.disable_after > 0 and count >= self.disable_after


@dataclass(slots=True)
class HnrRun:
    """What one evaluation did: snatches newly tracked, states changed, and the members
    warned, disabled and lifted (ids)."""

    tracked: int = 0
    changed: int = 0
    warned: list[int] = field(default_factory=list)
    disabled: list[int] = field(default_factory=list)
    lifted: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Recount:
    member_id: int
    old_count: int
    old_disabled: bool
    count: int
    disabled: bool


def _tables() -> dict[str, str]:
    return {
        "hnr": HitAndRun._meta.db_table,
        "history": TorrentHistory._meta.db_table,
        "torrent": Torrent._meta.db_table,
        "member": Member._meta.db_table,
    }


def _lock(cursor) -> None:
    if connection.vendor == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def _track_new_snatches(cursor, now: datetime) -> int:
    """One pending row for every snatch completed by ``now`` that has none yet."""
    t = _tables()
    cursor.execute(
        f"INSERT INTO {t['hnr']} (history_id, member_id, state, forgive_reason,"
        " created_at, updated_at)"
        f" SELECT h.id, h.member_id, %s, '', %s, %s FROM {t['history']} h"
        " WHERE h.completed_at IS NOT NULL AND h.completed_at <= %s"
        f" AND NOT EXISTS (SELECT 1 FROM {t['hnr']} r WHERE r.history_id = h.id)"
        " ON CONFLICT (history_id) DO NOTHING",
        [HitAndRunState.PENDING.value, now, now, now],
    )
    return max(cursor.rowcount, 0)


def _judge_open(cursor, now: datetime, rule: HnrRule) -> int:
    """Give every open row (pending, hit-and-run) the state the rule gives it now; rows
    whose state stays are not written. Returns how many changed."""
    t = _tables()
    s = HitAndRunState
    cutoff = now - rule.window - rule.grace
    cursor.execute(
        f"UPDATE {t['hnr']} SET state = j.new_state, updated_at = %s,"
        " resolved_at = CASE WHEN j.new_state = %s THEN NULL ELSE %s END"
        " FROM (SELECT r.id AS id, r.state AS old_state, CASE"
        "  WHEN t.uploader_id = h.member_id OR m.is_ratio_exempt OR t.status <> %s THEN %s"
        "  WHEN (%s > 0 AND h.seed_seconds >= %s) OR (%s > 0 AND h.uploaded >= %s *"
        "   CASE WHEN h.downloaded > t.size THEN h.downloaded ELSE t.size END) THEN %s"
        "  WHEN h.completed_at <= %s THEN %s"
        "  ELSE %s END AS new_state"
        f" FROM {t['hnr']} r JOIN {t['history']} h ON h.id = r.history_id"
        f" JOIN {t['torrent']} t ON t.id = h.torrent_id"
        f" JOIN {t['member']} m ON m.id = h.member_id"
        " WHERE r.state IN (%s, %s)) j"
        f" WHERE {t['hnr']}.id = j.id AND j.new_state <> j.old_state",
        [
            now,
            s.PENDING.value,
            now,
            TorrentStatus.APPROVED.value,
            s.EXEMPT.value,
            rule.seed_seconds,
            rule.seed_seconds,
            rule.ratio,
            rule.ratio,
            s.SATISFIED.value,
            cutoff,
            s.HIT_AND_RUN.value,
            s.PENDING.value,
            s.PENDING.value,
            s.HIT_AND_RUN.value,
        ],
    )
    return max(cursor.rowcount, 0)


def _recount(cursor, rule: HnrRule, now: datetime, member_ids: Iterable[int] | None) -> list:
    """Count every member's hit-and-runs again (or only ``member_ids``'), write the counts
    and switches that changed (one statement) and return those changes."""
    t = _tables()
    only = ""
    params: list = [HitAndRunState.HIT_AND_RUN.value]
    if member_ids is not None:
        ids = sorted(set(member_ids))
        if not ids:
            return []
        only = f" AND m.id IN ({', '.join(['%s'] * len(ids))})"
        params += ids
    cursor.execute(
        "SELECT m.id, m.hnr_count, m.hnr_disabled, COALESCE(c.n, 0)"
        f" FROM {t['member']} m LEFT JOIN (SELECT member_id, COUNT(*) AS n FROM {t['hnr']}"
        "  WHERE state = %s GROUP BY member_id) c ON c.member_id = m.id"
        f" WHERE (c.n IS NOT NULL OR m.hnr_count > 0 OR m.hnr_disabled){only}",
        params,
    )
    changes = []
    for member_id, old_count, old_disabled, count in cursor.fetchall():
        disabled = rule.disables(count)
        if count != old_count or disabled != bool(old_disabled):
            changes.append(_Recount(member_id, old_count, bool(old_disabled), count, disabled))
    if changes:
        with_v, v_params = values_cte(
            ("id", "n", "dis"), [(c.member_id, c.count, int(c.disabled)) for c in changes]
        )
        cursor.execute(
            f"{with_v} UPDATE {t['member']} SET hnr_count = v.n, hnr_disabled = (v.dis = 1),"
            f" updated_at = %s FROM v WHERE {t['member']}.id = v.id",
            [*v_params, now],
        )
    return changes


def _history_url() -> str:
    return reverse("history") + "?section=hnr"


def _consequences(changes: list[_Recount], rule: HnrRule, run: HnrRun) -> None:
    """Warn, disable and lift as the changed counts say: a notification to each member, the
    auth cache entry dropped when the switch changed (so trackerd sees it), an audit row."""
    warned = [
        c
        for c in changes
        if rule.warn_after and c.old_count < rule.warn_after <= c.count and not c.disabled
    ]
    switched = [c for c in changes if c.disabled != c.old_disabled]
    if not warned and not switched:
        return
    members = Member.objects.in_bulk([c.member_id for c in [*warned, *switched]])
    terms = _terms(rule)
    for change in warned:
        member = members[change.member_id]
        notify(
            member=member,
            kind=NOTIFY_KIND,
            subject=f"Hit-and-run warning: {change.count} of your snatches",
            body=(
                f"{change.count} of your snatches were not seeded as the rule asks ({terms})."
                " Seed them again: a hit-and-run that reaches the seeding time or the ratio is"
                " cleared."
                + (
                    f" With {rule.disable_after}, downloading is disabled."
                    if rule.disable_after
                    else ""
                )
            ),
            url=_history_url(),
        )
        run.warned.append(member.pk)
    for change in switched:
        member = members[change.member_id]
        authcache.invalidate_passkey(member.passkey)
        if change.disabled:
            subject = f"Downloading disabled: {change.count} hit-and-runs"
            body = (
                f"You have {change.count} hit-and-runs ({terms}); from {rule.disable_after} on"
                " you may not download. Seeding still works: seed your hit-and-runs until the"
                " count falls below that, and downloading comes back by itself."
            )
            run.disabled.append(member.pk)
        else:
            subject = "Downloading enabled again"
            body = (
                f"You have {change.count} hit-and-runs now, fewer than {rule.disable_after}:"
                " you may download again."
                if rule.disable_after
                else "The hit-and-run limit no longer applies: you may download again."
            )
            run.lifted.append(member.pk)
        notify(member=member, kind=NOTIFY_KIND, subject=subject, body=body, url=_history_url())
        audit_record(
            actor=None,
            action="hnr_download_disabled" if change.disabled else "hnr_download_enabled",
            target=member,
            old={"hnr_count": change.old_count, "hnr_disabled": change.old_disabled},
            new={"hnr_count": change.count, "hnr_disabled": change.disabled},
            reason="hit-and-run rule",
        )


def _terms(rule: HnrRule) -> str:
    """The rule in words, e.g. "seed 72 hours or reach ratio 1.0 within 14 days"."""
    ways = []
    if rule.seed_seconds:
        ways.append(f"seed {rule.seed_seconds / 3600:g} hours")
    if rule.ratio:
        ways.append(f"reach ratio {rule.ratio:g} on the torrent")
    days = rule.window.total_seconds() / 86400
    return f"{' or '.join(ways) or 'nothing can meet it'} within {days:g} days"


def hnr_terms() -> str:
    """The configured rule in words, for pages and notifications."""
    return _terms(HnrRule.from_settings())


def hnr_evaluate(*, now: datetime | None = None, rule: HnrRule | None = None) -> HnrRun:
    """Judge every open snatch at ``now`` and apply the consequences, in one transaction.

    Tracks new snatches (one pending row each), gives every open row its state (statements
    whose number does not depend on the rows), recounts the members' hit-and-runs, then warns,
    disables and lifts downloading for the members whose count crossed a threshold (one
    notification each; their auth cache entries dropped). Running it twice at the same ``now``
    changes nothing the second time. Does nothing when ``PBTS_HNR_ENABLED`` is false.

    Args:
        now: the time judged against (aware datetime; default: the clock).
        rule: the figures (default: ``HnrRule.from_settings()``).

    Returns:
        An :class:`HnrRun` saying what changed.
    """
    run = HnrRun()
    if not settings.PBTS_HNR_ENABLED:
        return run
    now = now or timezone.now()
    rule = rule or HnrRule.from_settings()
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor)
        run.tracked = _track_new_snatches(cursor, now)
        run.changed = _judge_open(cursor, now, rule)
        _consequences(_recount(cursor, rule, now, None), rule, run)
    return run


def hnr_forgive(
    *, hit_and_run: HitAndRun, actor: Member, reason: str = "", now: datetime | None = None
) -> HitAndRun:
    """Staff forgive one snatch: it no longer counts, and never will (state ``forgiven``).

    Audited (``hnr_forgive``); the member's count is recounted at once, which may lift their
    download switch (a notification says so).

    Args:
        hit_and_run: the row, pending or hit-and-run.
        actor: the staff member forgiving.
        reason: why (kept on the row and in the audit log).

    Raises:
        NotPermitted: ``tracker.services.members.moderation_check`` refuses (not staff,
            banned, the actor's own snatch, a member of the same or a higher rank).
        Conflict: the row is already satisfied, exempt or forgiven.
    """
    rule = HnrRule.from_settings()
    now = now or timezone.now()
    moderation_check(actor=actor, member=hit_and_run.member)
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor)  # before the row lock, as the evaluation takes them
        row = HitAndRun.objects.select_for_update().get(pk=hit_and_run.pk)
        if row.state not in OPEN_STATES:
            raise Conflict(f"This snatch is {row.get_state_display().lower()}: nothing to forgive.")
        old = row.state
        row.state = HitAndRunState.FORGIVEN
        row.forgiven_by = actor
        row.forgive_reason = reason.strip()
        row.resolved_at = now
        row.save(
            update_fields=["state", "forgiven_by", "forgive_reason", "resolved_at", "updated_at"]
        )
        audit_record(
            actor=actor,
            action="hnr_forgive",
            target=row,
            old={"state": old},
            new={"state": row.state},
            reason=row.forgive_reason,
        )
        notify(
            member=row.member,
            kind=NOTIFY_KIND,
            subject="A hit-and-run was forgiven",
            body=row.forgive_reason,
            url=_history_url(),
        )
        run = HnrRun()
        _consequences(_recount(cursor, rule, now, [row.member_id]), rule, run)
    return row
