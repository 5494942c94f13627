"""Bonus points on the tracker's side: earning them from seeding, and the store (docs/bonus.md).

Earning reads ``TorrentHistory.seed_seconds`` (grown by the statistics flush) and remembers per
member and torrent what it already counted (``BonusSeeding``), so a re-run awards nothing
twice. The points themselves are written by ``reputation.services`` (the bonus ledger's only
writer) in the same transaction. The store spends points on upload credit (the site's ratio
only, never verified or on-chain figures) and on freeleech tokens (``FreeleechToken``, which
the statistics flush honours).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BigIntegerField, DateTimeField, F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.bulksql import values_cte
from core.errors import InvalidInput, NotPermitted
from reputation.models import BonusTransaction
from reputation.policy import GIB, BonusFormula, bonus_points_per_hour
from reputation.services import MILLI, bonus_credit_earned, bonus_spend, ledger_credit_bonus
from tracker import authcache
from tracker.models import (
    BonusSeeding,
    FreeleechToken,
    Member,
    Torrent,
    TorrentHistory,
    TorrentStatus,
)

#: PostgreSQL advisory lock serialising award runs (two runs never count the same seconds).
AWARD_LOCK = 0x7062_7473_626F  # "pbtsbo"
UPLOAD = "upload"
FREELEECH = "freeleech"


def bonus_formula() -> BonusFormula:
    """The earning formula's coefficients from the ``PBTS_BONUS_*`` settings."""
    return BonusFormula(
        base=settings.PBTS_BONUS_BASE_PER_HOUR,
        size_factor=settings.PBTS_BONUS_SIZE_FACTOR,
        rarity_factor=settings.PBTS_BONUS_RARITY_FACTOR,
        age_factor=settings.PBTS_BONUS_AGE_FACTOR,
        age_full_days=settings.PBTS_BONUS_AGE_FULL_DAYS,
    )


def torrent_points_per_hour(torrent: Torrent, *, now: datetime | None = None) -> float:
    """Points one hour of seeding ``torrent`` earns now (``reputation.policy``'s formula)."""
    now = now or timezone.now()
    return bonus_points_per_hour(
        size=torrent.size,
        seeders=torrent.seeders,
        age_days=(now - torrent.created_at).total_seconds() / 86400,
        formula=bonus_formula(),
    )


@dataclass(frozen=True, slots=True)
class AwardResult:
    """One award run: ``pairs`` (member, torrent) with new seeding counted, ``members``
    credited, ``millipoints`` awarded in all, ``seconds`` paid and ``seconds_refused``
    (seeding beyond the wall-clock bound)."""

    pairs: int = 0
    members: int = 0
    millipoints: int = 0
    seconds: int = 0
    seconds_refused: int = 0


def _pending_seeding(now: datetime):
    """History rows of approved torrents whose ``seed_seconds`` grew since the last award,
    with what was counted before (one query; the unique (member, torrent) indexes serve the
    subqueries)."""
    state = BonusSeeding.objects.filter(member=OuterRef("member"), torrent=OuterRef("torrent"))
    return (
        TorrentHistory.objects.filter(torrent__status=TorrentStatus.APPROVED)
        .annotate(
            counted=Coalesce(
                Subquery(state.values("counted_seconds")[:1]),
                Value(0),
                output_field=BigIntegerField(),
            ),
            allowance=Subquery(state.values("allowance_seconds")[:1]),
            checked_at=Subquery(state.values("checked_at")[:1], output_field=DateTimeField()),
        )
        .filter(seed_seconds__gt=F("counted"))
        .values_list(
            "member_id",
            "torrent_id",
            "seed_seconds",
            "created_at",
            "counted",
            "allowance",
            "checked_at",
            "torrent__size",
            "torrent__seeders",
            "torrent__created_at",
        )
    )


def bonus_award_seeding(*, now: datetime | None = None) -> AwardResult:
    """Award bonus points for the seeding the statistics flush recorded since the last run.

    For each member and approved torrent, the new seconds are ``TorrentHistory.seed_seconds``
    minus what ``BonusSeeding.counted_seconds`` already counted. They are paid at the torrent's
    rate (:func:`torrent_points_per_hour`), but never more than the wall-clock time since the
    last award plus what the last award left unused, capped at ``PBTS_BONUS_SLACK_SECONDS``
    (so over any span the paid seconds are at most the span plus the slack, which absorbs the
    lag between seeding and its flush): the flush bounds each announce's seeding, but a member
    with several peers on one torrent is credited by each, and nobody seeds one torrent for
    more than an hour per hour. Seconds beyond the bound are counted and never paid.

    One transaction: the advisory lock (PostgreSQL; two runs never count the same seconds),
    one read, one upsert of ``BonusSeeding``, then ``reputation.services.bonus_credit_earned``.
    Running it twice awards once. ``now`` (default: the clock) lets tests drive time.

    Returns:
        :class:`AwardResult`.
    """
    now = now or timezone.now()
    slack = int(settings.PBTS_BONUS_SLACK_SECONDS)
    formula = bonus_formula()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AWARD_LOCK])
        rates: dict[int, float] = {}
        earned: dict[int, float] = defaultdict(float)
        rows = []
        paid_total = refused = 0
        for (
            member_id,
            torrent_id,
            seen,
            history_created,
            counted,
            allowance,
            checked_at,
            size,
            seeders,
            torrent_created,
        ) in _pending_seeding(now):
            if torrent_id not in rates:
                age_days = (now - torrent_created).total_seconds() / 86400
                rates[torrent_id] = bonus_points_per_hour(
                    size=size, seeders=seeders, age_days=age_days, formula=formula
                )
            since = checked_at or history_created
            carried = slack if allowance is None else min(slack, allowance)
            bucket = carried + max(0, int((now - since).total_seconds()))
            delta = seen - counted
            paid = min(delta, bucket)
            paid_total += paid
            refused += delta - paid
            earned[member_id] += paid * rates[torrent_id] * MILLI / 3600
            rows.append((member_id, torrent_id, seen, paid, bucket - paid))
        if not rows:
            return AwardResult()
        with_v, params = values_cte(("member_id", "torrent_id", "seen", "paid", "allowance"), rows)
        table = BonusSeeding._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"{with_v} INSERT INTO {table} (member_id, torrent_id, counted_seconds,"
                " paid_seconds, allowance_seconds, checked_at)"
                " SELECT v.member_id, v.torrent_id, v.seen, v.paid, v.allowance, %s FROM v"
                " WHERE true ON CONFLICT (member_id, torrent_id) DO UPDATE SET"
                " counted_seconds = excluded.counted_seconds,"
                f" paid_seconds = {table}.paid_seconds + excluded.paid_seconds,"
                " allowance_seconds = excluded.allowance_seconds,"
                " checked_at = excluded.checked_at",
                [*params, now],
            )
        amounts = {m: int(points) for m, points in earned.items()}
        members = bonus_credit_earned(amounts=amounts, reference="seeding", now=now)
    return AwardResult(
        pairs=len(rows),
        members=members,
        millipoints=sum(a for a in amounts.values() if a > 0),
        seconds=paid_total,
        seconds_refused=refused,
    )


# --- the store ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreItem:
    """Something the store sells: ``key`` (``upload`` or ``freeleech``), its ``cost`` in
    millipoints, whether it applies to a torrent, and a plain description."""

    key: str
    name: str
    cost: int
    needs_torrent: bool
    description: str

    @property
    def points(self) -> float:
        """The cost in points."""
        return self.cost / MILLI


def bonus_store_items() -> list[StoreItem]:
    """The store's items with their prices (``PBTS_BONUS_UPLOAD_*``, ``PBTS_BONUS_TOKEN_*``)."""
    gib = settings.PBTS_BONUS_UPLOAD_GIB
    hours = settings.PBTS_BONUS_TOKEN_HOURS
    return [
        StoreItem(
            key=UPLOAD,
            name=f"{gib:g} GiB upload credit",
            cost=int(settings.PBTS_BONUS_UPLOAD_COST * MILLI),
            needs_torrent=False,
            description=(
                f"Adds {gib:g} GiB to the upload the site's ratio rule counts (not to your"
                " receipt-verified or on-chain figures)."
            ),
        ),
        StoreItem(
            key=FREELEECH,
            name=f"Freeleech token ({hours:g} h)",
            cost=int(settings.PBTS_BONUS_TOKEN_COST * MILLI),
            needs_torrent=True,
            description=(
                f"For {hours:g} hours your download of one torrent does not count against"
                " your ratio."
            ),
        ),
    ]


def bonus_store_buy(
    *, member: Member, item: str, torrent_id: int | None = None, now: datetime | None = None
) -> BonusTransaction:
    """Spend points on one store item, all or nothing in one transaction.

    ``upload``: ``PBTS_BONUS_UPLOAD_GIB`` GiB to ``Ledger.bonus_uploaded``
    (``reputation.services.ledger_credit_bonus``); the member's cached announce standing is
    dropped once committed, so the ratio rule sees it at the next announce. ``freeleech``: a
    ``FreeleechToken`` on ``torrent_id`` for ``PBTS_BONUS_TOKEN_HOURS`` hours.

    Returns:
        The ``spend`` transaction.

    Raises:
        NotPermitted: the member is banned.
        InvalidInput: unknown item (field ``item``), not enough points (``item``), torrent
            missing, unknown, not approved or already freeleech (``torrent``), a token already
            active on it (``torrent``).
    """
    now = now or timezone.now()
    if member.is_banned:
        raise NotPermitted("Banned members cannot use the store.")
    items = {i.key: i for i in bonus_store_items()}
    chosen = items.get(item)
    if chosen is None:
        raise InvalidInput(f"Unknown item; choose one of: {', '.join(items)}.", field="item")
    if chosen.key == UPLOAD:
        uploaded = int(settings.PBTS_BONUS_UPLOAD_GIB * GIB)
        with transaction.atomic():
            tx = bonus_spend(member_id=member.pk, cost=chosen.cost, reference=UPLOAD, now=now)
            ledger_credit_bonus(member_id=member.pk, uploaded=uploaded)
            passkey = member.passkey
            transaction.on_commit(lambda: authcache.invalidate_passkey(passkey))
        return tx
    torrent = _token_torrent(torrent_id)
    with transaction.atomic():
        _refuse_active_token(member, torrent, now)
        # The spend locks the member's account row until commit, so a second purchase by the
        # same member waits here and then sees this token (checked again below).
        tx = bonus_spend(
            member_id=member.pk, cost=chosen.cost, reference=f"{FREELEECH}:{torrent.pk}", now=now
        )
        _refuse_active_token(member, torrent, now)
        FreeleechToken.objects.create(
            member=member,
            torrent=torrent,
            created_at=now,
            expires_at=now + timedelta(hours=settings.PBTS_BONUS_TOKEN_HOURS),
        )
    return tx


def _token_torrent(torrent_id: int | None) -> Torrent:
    if torrent_id is None:
        raise InvalidInput("Choose the torrent the token is for.", field="torrent")
    torrent = Torrent.objects.filter(pk=torrent_id, status=TorrentStatus.APPROVED).first()
    if torrent is None:
        raise InvalidInput("No approved torrent with this id.", field="torrent")
    if torrent.is_freeleech:
        raise InvalidInput("This torrent is freeleech for everyone already.", field="torrent")
    return torrent


def _refuse_active_token(member: Member, torrent: Torrent, now: datetime) -> None:
    active = (
        FreeleechToken.objects.filter(member=member, torrent=torrent, expires_at__gt=now)
        .values_list("expires_at", flat=True)
        .first()
    )
    if active is not None:
        raise InvalidInput(
            f"A freeleech token is already active on this torrent until {active:%Y-%m-%d %H:%M}"
            " UTC.",
            field="torrent",
        )


def bonus_active_tokens(*, member: Member, now: datetime | None = None) -> list[FreeleechToken]:
    """The member's freeleech tokens still active (soonest to expire first), with torrents."""
    now = now or timezone.now()
    return list(
        FreeleechToken.objects.filter(member=member, expires_at__gt=now)
        .select_related("torrent")
        .order_by("expires_at")
    )
