"""Django admin of the tracker app: a module per model group (docs/architecture.md).

Shared helpers (moderator access, audited edits, actions that need a reason) and the audit log's
admin live in ``core.admin``.
"""

from tracker.admin import (  # noqa: F401 (registers the admins)
    browse,
    hnr,
    invites,
    members,
    site,
    torrents,
)
