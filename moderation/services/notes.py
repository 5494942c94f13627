"""Staff notes on members: free text by staff, read by staff only (never by the member the
note is about, even when that member is staff)."""

from __future__ import annotations

from django.db import transaction

from core.audit import audit_record
from core.errors import NotPermitted
from moderation.models import StaffNote
from moderation.services._common import NOTE_MAX_CHARS, clean_text, staff_check
from tracker.models import Member


@transaction.atomic
def note_add(*, member: Member, author: Member, body: str) -> StaffNote:
    """Add a note about ``member``; audited as ``staff_note_add`` (the text is in the note,
    not copied into the log).

    Raises:
        NotPermitted: the author is not staff in good standing, or writes about themselves.
        InvalidInput: an empty body or one longer than 5,000 characters (field ``body``).
    """
    staff_check(author)
    if author.pk == member.pk:
        raise NotPermitted("Notes about yourself are written by another moderator.")
    body = clean_text(body, field="body", limit=NOTE_MAX_CHARS)
    note = StaffNote.objects.create(member=member, author=author, body=body)
    audit_record(actor=author, action="staff_note_add", target=member, new={"note": note.pk})
    return note
