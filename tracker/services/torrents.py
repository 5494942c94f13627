"""Torrent services: upload (with the private/source rewrite), download, moderation, edits."""

from __future__ import annotations

import re
import unicodedata

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.text import normalize_newlines

from core.audit import audit_record
from core.errors import Conflict, InvalidInput, NotFound, NotPermitted
from core.notifications import notify
from tracker import authcache, metainfo
from tracker.markup import render_markdown
from tracker.models import Category, Member, SitePage, Torrent, TorrentFile, TorrentStatus
from tracker.selectors import member_announce_url, member_udp_announce_url, torrent_visible

NAME_MAX_LENGTH = Torrent._meta.get_field("name").max_length or 255
DUPLICATE_MESSAGE = "This torrent is already on the site."
REASON_REQUIRED = frozenset({TorrentStatus.REJECTED, TorrentStatus.DELETED})
FILENAME_MAX_LENGTH = 200


def _default_category() -> Category:
    """The category with slug ``other``; a category already named "Other" is reused."""
    existing = Category.objects.filter(slug="other").first()
    if existing is None:
        existing = Category.objects.filter(name__iexact="other").first()
    if existing is not None:
        return existing
    category, _ = Category.objects.get_or_create(slug="other", defaults={"name": "Other"})
    return category


def _clean_name(name: str) -> str:
    """Validate a member-given torrent name; ``''`` stays ``''``."""
    name = name.strip()
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidInput(
            f"The name is too long (at most {NAME_MAX_LENGTH} characters).", field="name"
        )
    if "\x00" in name:
        raise InvalidInput("The name contains a NUL character.", field="name")
    return name


def _clean_description(description: str) -> str:
    """Validate a description: line breaks become ``\\n`` (so a line break counts one
    character, as in the browser), no NUL, at most ``PBTS_DESCRIPTION_MAX_CHARS`` characters.

    Raises:
        InvalidInput: a NUL character, or too long (field ``description``).
    """
    description = normalize_newlines(description)
    if "\x00" in description:
        raise InvalidInput("The description contains a NUL character.", field="description")
    limit = settings.PBTS_DESCRIPTION_MAX_CHARS
    if len(description) > limit:
        raise InvalidInput(
            f"The description is too long ({len(description):,} characters; at most {limit:,}).",
            field="description",
        )
    return description


def upload_approval_mode() -> str:
    """The upload approval mode in force: ``PBTS_UPLOAD_APPROVAL`` (``auto``, ``staff`` or
    ``trusted``), except that the older ``PBTS_UPLOADS_NEED_APPROVAL = True`` (an alias of
    ``staff``) wins over ``auto`` (docs/moderation.md)."""
    mode = getattr(settings, "PBTS_UPLOAD_APPROVAL", "auto")
    if mode == "auto" and getattr(settings, "PBTS_UPLOADS_NEED_APPROVAL", False):
        return "staff"
    return mode


def upload_status(uploader: Member) -> str:
    """The status a new upload by ``uploader`` gets: ``approved`` in mode ``auto``; ``pending``
    in mode ``staff`` (for everybody, staff too: their own uploads wait in the queue as well);
    in mode ``trusted``, ``approved`` for staff and members whose class is in
    ``PBTS_UPLOAD_TRUSTED_CLASSES`` (e.g. ``uploader``, ``vip``), ``pending`` for the others.
    An unknown mode is treated as ``staff`` (the safe side)."""
    mode = upload_approval_mode()
    if mode == "auto":
        return TorrentStatus.APPROVED
    if mode == "trusted" and (
        uploader.is_moderator
        or uploader.member_class in getattr(settings, "PBTS_UPLOAD_TRUSTED_CLASSES", ())
    ):
        return TorrentStatus.APPROVED
    return TorrentStatus.PENDING


def torrent_upload(
    *,
    uploader: Member,
    data: bytes,
    category: Category | None = None,
    name: str = "",
    description: str = "",
) -> Torrent:
    """Register an uploaded .torrent: validate, make it private and ours, store it.

    Args:
        uploader: the member uploading.
        data: the raw .torrent file, at most ``PBTS_MAX_TORRENT_BYTES`` bytes, listing at
            most ``PBTS_MAX_TORRENT_FILES`` files, nested at most ``PBTS_MAX_BENCODE_DEPTH``
            levels deep.
        category: ``None`` puts it in the category with slug ``other`` (created if missing).
        name: display name; ``''`` uses the torrent's own name (cut to 255 characters).
        description: free text (Markdown), at most ``PBTS_DESCRIPTION_MAX_CHARS`` characters;
            rendered once here (``tracker.markup.render_markdown``) into
            ``description_html``.

    The file is rewritten (``private`` = 1 per BEP 27, ``source`` = ``PBTS_TORRENT_SOURCE``,
    announce URLs and DHT nodes dropped) and registered under the rewritten v1 info_hash. The
    torrent and its file rows are written in one transaction: nothing is left on error. Status
    is ``pending`` or ``approved`` as :func:`upload_status` decides (``PBTS_UPLOAD_APPROVAL``).

    Raises:
        NotPermitted: the uploader is banned.
        InvalidInput: the file is not a usable torrent (field ``file``), the name is bad
            (field ``name``) or the description too long or holds a NUL (field
            ``description``).
        Conflict: the rewritten torrent is already registered (field ``file``).
    """
    if uploader.is_banned:
        raise NotPermitted("Your account is banned.")
    name = _clean_name(name)
    description = _clean_description(description)
    try:
        parsed = metainfo.parse(
            bytes(data),
            max_bytes=settings.PBTS_MAX_TORRENT_BYTES,
            max_files=settings.PBTS_MAX_TORRENT_FILES,
            max_depth=settings.PBTS_MAX_BENCODE_DEPTH,
        )
        meta = metainfo.rewrite(parsed, source=settings.PBTS_TORRENT_SOURCE)
    except metainfo.MetainfoError as exc:
        raise InvalidInput(str(exc), field="file") from exc
    if Torrent.objects.filter(info_hash=meta.info_hash).exists():
        raise Conflict(DUPLICATE_MESSAGE, field="file")
    if category is None:
        category = _default_category()
    status = upload_status(uploader)
    description_html = render_markdown(description)
    try:
        with transaction.atomic():
            torrent = Torrent.objects.create(
                info_hash=meta.info_hash,
                name=name or meta.name.strip()[:NAME_MAX_LENGTH],
                description=description,
                description_html=description_html,
                category=category,
                uploader=uploader,
                metainfo=meta.to_bytes(),
                size=meta.total_size,
                piece_length=meta.piece_length,
                piece_count=meta.piece_count,
                file_count=len(meta.files),
                is_hybrid=meta.is_hybrid,
                status=status,
            )
            TorrentFile.objects.bulk_create(
                TorrentFile(torrent=torrent, path=path, size=size) for path, size in meta.files
            )
            authcache.invalidate_torrent(meta.info_hash)
    except IntegrityError as exc:
        if Torrent.objects.filter(info_hash=meta.info_hash).exists():
            raise Conflict(DUPLICATE_MESSAGE, field="file") from exc
        raise
    return torrent


# A pending torrent is downloadable by those who see it (its uploader, to seed once approved;
# staff, to check it); rejected and deleted ones by nobody.
DOWNLOADABLE_STATUSES = (TorrentStatus.APPROVED, TorrentStatus.PENDING)


def torrent_download(*, torrent: Torrent, member: Member) -> bytes:
    """Return the .torrent file for ``member``: their announce URL, the same info_hash.

    ``announce`` and ``announce-list`` carry ``selectors.member_announce_url(member)`` (with
    the passkey); ``announce-list`` also has the member's UDP URL in the same tier
    (``selectors.member_udp_announce_url``, BEP 15 with the passkey in BEP 41 URL data) unless
    UDP is off. ``comment`` is the torrent's page URL. The stored bytes are spliced, never
    decoded (``metainfo.encode_for_member``): the info dictionary is served as stored and a
    download costs one copy of the file.

    Raises:
        NotPermitted: the member is banned or their downloading is disabled, or the torrent
            was rejected or deleted (only approved torrents, and pending ones to those who see
            them, are downloadable).
        NotFound: the torrent is not visible to the member (``selectors.torrent_visible``).
    """
    if member.is_banned:
        raise NotPermitted("Your account is banned.")
    if not member.can_download:
        raise NotPermitted("Your downloading is disabled.")
    row = (
        torrent_visible(viewer=member)
        .filter(pk=torrent.pk)
        .values_list("metainfo", "status")
        .first()
    )
    if row is None:
        raise NotFound("This torrent does not exist.")
    stored, status = row
    if status not in DOWNLOADABLE_STATUSES:
        raise NotPermitted(f"This torrent was {status}: it cannot be downloaded.")
    return metainfo.encode_for_member(
        stored,
        announce_url=member_announce_url(member),
        comment=f"{settings.PBTS_BASE_URL}/torrents/{torrent.pk}/",
        other_urls=(member_udp_announce_url(member),),
    )


_UNSAFE_FILENAME_CHARS = re.compile(r'[/\\"]')
_SPACES = re.compile(r"\s+")


def _filename_part(text: str) -> str:
    text = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    text = _UNSAFE_FILENAME_CHARS.sub("_", text)
    return _SPACES.sub(" ", text).strip(" .")


def torrent_filename(torrent: Torrent) -> str:
    """A safe download filename: ``[<PBTS_SITE_NAME>] <name>.torrent``.

    Control and format characters become spaces, ``/``, ``\\`` and ``"`` become ``_``, runs
    of whitespace collapse, leading/trailing dots and spaces go; the name part is cut to 200
    characters and falls back to ``torrent`` when nothing is left.
    """
    name = _filename_part(torrent.name)[:FILENAME_MAX_LENGTH].rstrip(" .") or "torrent"
    site = _filename_part(settings.PBTS_SITE_NAME)
    return f"[{site}] {name}.torrent" if site else f"{name}.torrent"


@transaction.atomic
def torrent_moderate(*, torrent: Torrent, actor: Member, status: str, reason: str = "") -> Torrent:
    """Set a torrent's moderation status; audited as ``torrent_<status>``.

    Only ``approved`` torrents are listed and tracked; the auth cache entry for the
    info_hash is invalidated so the tracker sees the change at once.

    Raises:
        NotPermitted: the actor is banned (a banned moderator moderates nothing, as in
            ``member_moderate``), inactive, or not staff.
        InvalidInput: ``status`` is not a ``TorrentStatus`` value (field ``status``), or no
            reason is given for ``rejected``/``deleted`` (field ``reason``).
    """
    if actor.is_banned:
        raise NotPermitted("Your account is banned: you cannot moderate.")
    if not (actor.is_active and actor.is_moderator):
        raise NotPermitted("Only staff can moderate torrents.")
    if status not in TorrentStatus.values:
        raise InvalidInput("Unknown torrent status.", field="status")
    status = TorrentStatus(status).value
    reason = reason.strip()
    if status in REASON_REQUIRED and not reason:
        raise InvalidInput("Rejecting or deleting a torrent needs a reason.", field="reason")
    torrent = Torrent.objects.select_for_update().get(pk=torrent.pk)
    old = {"status": torrent.status, "moderation_reason": torrent.moderation_reason}
    torrent.status = status
    torrent.moderation_reason = reason
    torrent.save(update_fields=["status", "moderation_reason", "updated_at"])
    audit_record(
        actor=actor,
        action=f"torrent_{status}",
        target=torrent,
        old=old,
        new={"status": status, "moderation_reason": reason},
        reason=reason,
    )
    authcache.invalidate_torrent(torrent.info_hash)
    _notify_moderated(torrent=torrent, actor=actor, old_status=old["status"])
    return torrent


MODERATION_NOTICES = {
    TorrentStatus.APPROVED: ("torrent_approved", "Your torrent was approved: {name}"),
    TorrentStatus.REJECTED: ("torrent_rejected", "Your torrent was rejected: {name}"),
    TorrentStatus.DELETED: ("torrent_deleted", "Your torrent was deleted: {name}"),
}


def _notify_moderated(*, torrent: Torrent, actor: Member, old_status: str) -> None:
    """Tell the uploader that staff approved, rejected or deleted their torrent (with the
    reason); nothing when the status did not change, for a staff member's own torrent or one
    whose uploader is gone. Runs in :func:`torrent_moderate`'s transaction."""
    notice = MODERATION_NOTICES.get(torrent.status)
    if notice is None or old_status == torrent.status:
        return
    if torrent.uploader_id is None or torrent.uploader_id == actor.pk:
        return
    kind, subject = notice
    body = f"Reason: {torrent.moderation_reason}" if torrent.moderation_reason else ""
    notify(
        member=torrent.uploader,
        kind=kind,
        subject=subject.format(name=torrent.name),
        body=body,
        # Uploaders see their own approved and rejected torrents, never deleted ones.
        url=f"/torrents/{torrent.pk}/" if torrent.status != TorrentStatus.DELETED else "",
    )


@transaction.atomic
def torrent_set_promotion(
    *,
    torrent: Torrent,
    actor: Member,
    is_freeleech: bool,
    is_double_upload: bool,
    reason: str = "",
) -> Torrent:
    """Set freeleech (downloads not counted) and double upload (uploads counted twice).

    Audited as ``torrent_promotion``; the auth cache entry for the info_hash is invalidated.

    Raises:
        NotPermitted: the actor is not staff.
    """
    if not actor.is_moderator:
        raise NotPermitted("Only staff can change promotions.")
    torrent = Torrent.objects.select_for_update().get(pk=torrent.pk)
    old = {"is_freeleech": torrent.is_freeleech, "is_double_upload": torrent.is_double_upload}
    new = {"is_freeleech": bool(is_freeleech), "is_double_upload": bool(is_double_upload)}
    torrent.is_freeleech = new["is_freeleech"]
    torrent.is_double_upload = new["is_double_upload"]
    torrent.save(update_fields=["is_freeleech", "is_double_upload", "updated_at"])
    audit_record(
        actor=actor, action="torrent_promotion", target=torrent, old=old, new=new, reason=reason
    )
    authcache.invalidate_torrent(torrent.info_hash)
    return torrent


@transaction.atomic
def torrent_update(
    *,
    torrent: Torrent,
    actor: Member,
    name: str | None = None,
    description: str | None = None,
    category: Category | None = None,
) -> Torrent:
    """Edit a torrent's name, description or category; ``None`` leaves a field as it is.

    The uploader or staff may edit; a staff edit of someone else's torrent is audited as
    ``torrent_update`` (old and new values; the category as its slug). A new description is
    rendered here into ``description_html`` (at most ``PBTS_DESCRIPTION_MAX_CHARS``
    characters).

    Raises:
        NotPermitted: the actor is banned, or neither the uploader nor staff, or the
            uploader of a deleted torrent.
        InvalidInput: an empty or too long name (field ``name``), a too long description or
            one with a NUL (field ``description``).
    """
    if actor.is_banned:
        raise NotPermitted("Your account is banned.")
    is_owner = torrent.uploader_id is not None and torrent.uploader_id == actor.pk
    if not actor.is_moderator and not is_owner:
        raise NotPermitted("You cannot edit this torrent.")
    changes: dict[str, object] = {}
    if name is not None:
        name = _clean_name(name)
        if not name:
            raise InvalidInput("A torrent needs a name.", field="name")
        changes["name"] = name
    description_html = ""
    if description is not None:
        changes["description"] = _clean_description(description)
        # Rendered before the row is locked (the worst input at the cap takes ~0.3 s).
        description_html = render_markdown(changes["description"])
    if category is not None:
        changes["category"] = category
    torrent = Torrent.objects.select_for_update().select_related("category").get(pk=torrent.pk)
    if not actor.is_moderator and torrent.status == TorrentStatus.DELETED:
        raise NotPermitted("You cannot edit this torrent.")
    changed = {f: v for f, v in changes.items() if getattr(torrent, f) != v}
    if not changed:
        return torrent
    old = {f: getattr(torrent, f) for f in changed}
    for field, value in changed.items():
        setattr(torrent, field, value)
    rendered = []
    if "description" in changed:
        torrent.description_html = description_html
        rendered = ["description_html"]
    torrent.save(update_fields=[*changed, *rendered, "updated_at"])
    if not is_owner:
        audit_record(
            actor=actor,
            action="torrent_update",
            target=torrent,
            old=_audit_values(old),
            new=_audit_values(changed),
        )
    return torrent


def _audit_values(values: dict[str, object]) -> dict[str, object]:
    return {f: (v.slug if isinstance(v, Category) else v) for f, v in values.items()}


def rendered_markup_refresh() -> tuple[int, int]:
    """Render every torrent description and site page again with the current settings
    (``PBTS_REMOTE_IMAGES``, ``PBTS_BASE_URL``; they are applied when text is saved) and
    store the HTML that changed. Not audited: no member-visible text changes, only its
    rendering. Returns ``(torrents, site pages)`` updated. ``manage.py rerender_markdown``."""
    torrents = pages = 0
    rows = Torrent.objects.only("pk", "description", "description_html").order_by("pk")
    for torrent in rows.iterator(chunk_size=500):
        html = render_markdown(torrent.description)
        if html != torrent.description_html:
            torrents += Torrent.objects.filter(pk=torrent.pk).update(description_html=html)
    for page in SitePage.objects.only("pk", "body", "body_html").order_by("pk"):
        html = render_markdown(page.body)
        if html != page.body_html:
            pages += SitePage.objects.filter(pk=page.pk).update(body_html=html)
    return torrents, pages
