"""Browse services: torrent tags, bookmarks and feed keys (docs/browse-and-feeds.md)."""

from __future__ import annotations

import re

from django.conf import settings
from django.db import IntegrityError, transaction

from core.audit import audit_record
from core.errors import InvalidInput, NotPermitted
from tracker.models import Bookmark, FeedKey, Member, Tag, Torrent, TorrentStatus

TAG_MAX_LENGTH = Tag._meta.get_field("name").max_length or 32
_TAG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SEPARATORS = re.compile(r"[\s_.]+")


def tag_normalize(text: str) -> str:
    """One tag as stored: lower case, spaces, dots and underscores become ``-``, surrounding
    dashes dropped. ``"Sci Fi"`` -> ``"sci-fi"``.

    Raises:
        InvalidInput: empty, longer than ``TAG_MAX_LENGTH``, or other characters than
            ``a-z``, ``0-9`` and single dashes (field ``tags``).
    """
    slug = _SEPARATORS.sub("-", text.strip().lower()).strip("-")
    if not slug:
        raise InvalidInput("A tag cannot be empty.", field="tags")
    if len(slug) > TAG_MAX_LENGTH:
        raise InvalidInput(
            f'The tag "{slug[:40]}" is too long (at most {TAG_MAX_LENGTH} characters).',
            field="tags",
        )
    if not _TAG_RE.match(slug):
        raise InvalidInput(
            f'The tag "{slug[:40]}" may use only letters a-z, digits and dashes.', field="tags"
        )
    return slug


def tags_parse(text: str | list[str]) -> list[str]:
    """Normalised, de-duplicated tags (first occurrence order) from a comma- or
    space-separated string or a list; at most ``PBTS_MAX_TAGS``.

    Raises:
        InvalidInput: a bad tag (:func:`tag_normalize`) or too many (field ``tags``).
    """
    parts = re.split(r"[,\s]+", text) if isinstance(text, str) else list(text)
    tags: list[str] = []
    for part in parts:
        if not isinstance(part, str) or not part.strip():
            continue
        slug = tag_normalize(part)
        if slug not in tags:
            tags.append(slug)
    if len(tags) > settings.PBTS_MAX_TAGS:
        raise InvalidInput(f"At most {settings.PBTS_MAX_TAGS} tags.", field="tags")
    return tags


@transaction.atomic
def torrent_tags_set(*, torrent: Torrent, actor: Member, tags: str | list[str]) -> list[str]:
    """Replace the torrent's tags; returns the new tag names, sorted.

    The uploader or staff may set them (as for ``torrent_update``); a staff change of someone
    else's torrent is audited as ``torrent_tags``. Tags are made on first use.

    Args:
        tags: comma- or space-separated text, or a list (see :func:`tags_parse`).

    Raises:
        NotPermitted: the actor is banned, neither the uploader nor staff, or the uploader
            of a deleted torrent.
        InvalidInput: a bad tag or too many (field ``tags``).
    """
    if actor.is_banned:
        raise NotPermitted("Your account is banned.")
    is_owner = torrent.uploader_id is not None and torrent.uploader_id == actor.pk
    if not actor.is_moderator and (not is_owner or torrent.status == TorrentStatus.DELETED):
        raise NotPermitted("You cannot edit this torrent's tags.")
    names = sorted(tags_parse(tags))
    torrent = Torrent.objects.select_for_update().only("pk", "name").get(pk=torrent.pk)
    old = sorted(torrent.tags.values_list("name", flat=True))
    if old == names:
        return names
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=n) for n in names if n not in existing]
    Tag.objects.bulk_create(missing, ignore_conflicts=True)
    torrent.tags.set(Tag.objects.filter(name__in=names))
    if not is_owner:
        audit_record(
            actor=actor,
            action="torrent_tags",
            target=torrent,
            old={"tags": old},
            new={"tags": names},
        )
    return names


def bookmark_set(*, member: Member, torrent: Torrent, bookmarked: bool) -> bool:
    """Add (``bookmarked=True``) or remove the member's bookmark of ``torrent``; returns
    whether it is bookmarked now. Idempotent; the caller checks that the member may see the
    torrent (``torrent_visible``).

    Raises:
        NotPermitted: the member is banned.
    """
    if member.is_banned:
        raise NotPermitted("Your account is banned.")
    if not bookmarked:
        Bookmark.objects.filter(member=member, torrent=torrent).delete()
        return False
    try:
        with transaction.atomic():
            Bookmark.objects.get_or_create(member=member, torrent=torrent)
    except IntegrityError:  # a concurrent add won the race: it is bookmarked either way
        pass
    return True


def bookmark_toggle(*, member: Member, torrent: Torrent) -> bool:
    """Flip the member's bookmark of ``torrent``; returns whether it is bookmarked now.

    Raises:
        NotPermitted: the member is banned.
    """
    exists = Bookmark.objects.filter(member=member, torrent=torrent).exists()
    return bookmark_set(member=member, torrent=torrent, bookmarked=not exists)


def feed_key_get(*, member: Member) -> str:
    """The member's feed key, made on first use (``FeedKey``)."""
    try:
        return member.feed_key.key
    except FeedKey.DoesNotExist:
        pass
    try:
        with transaction.atomic():
            feed_key = FeedKey.objects.create(member=member)
    except IntegrityError:  # made concurrently
        feed_key = FeedKey.objects.get(member=member)
    member.feed_key = feed_key
    return feed_key.key


@transaction.atomic
def feed_key_reset(*, member: Member) -> str:
    """Replace the member's feed key; the old feed URLs stop working at once. Returns the new
    key (never logged or audited in clear).

    Raises:
        NotPermitted: the member is banned.
    """
    if member.is_banned:
        raise NotPermitted("Your account is banned.")
    feed_key, _ = FeedKey.objects.select_for_update().get_or_create(member=member)
    feed_key.key = FeedKey._meta.get_field("key").get_default()
    feed_key.save(update_fields=["key"])
    member.feed_key = feed_key
    return feed_key.key
