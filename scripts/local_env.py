"""Write the checkout's local settings file for the embedded default (``make run`` runs this).

Usage: ``python3 scripts/local_env.py [PATH [BASE_URL]]`` (default ``.env`` beside
``manage.py``). The file gets ``DEBUG=true``, a ``SECRET_KEY`` generated here (50 random URL-safe
bytes from ``secrets``; never a fixed key) and, when given, ``PBTS_BASE_URL`` (the address
``make run`` serves on, so that links printed by commands point at it), so that every
``manage.py`` command run in the checkout after ``make run`` uses the same configuration with
no exported variables. An existing file is left
as it is. Standard library only: it runs before the virtualenv exists. The file is git-ignored.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

TEMPLATE = """\
# Local settings of this checkout, written by `make run` (scripts/local_env.py). Never commit.
# The embedded default: SQLite, in-process cache and peer store, Celery tasks inline.
# Every knob is listed in .env.example; the environment wins over this file.
DEBUG=true
SECRET_KEY={secret_key}
"""
BASE_URL_LINE = "PBTS_BASE_URL={base_url}\n"


def write_local_env(path: Path, base_url: str = "") -> bool:
    """Create ``path`` with DEBUG on, a fresh SECRET_KEY and, if given, ``PBTS_BASE_URL``,
    unless it exists.

    Returns True if the file was written. The file is created with mode 0600 (it holds a key).
    """
    if path.exists():
        return False
    text = TEMPLATE.format(secret_key=secrets.token_urlsafe(50))
    if base_url:
        text += BASE_URL_LINE.format(base_url=base_url.rstrip("/"))
    path.touch(mode=0o600)
    path.write_text(text)
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / ".env"
    if write_local_env(target, sys.argv[2] if len(sys.argv) > 2 else ""):
        print(f"Wrote {target}: DEBUG=true and a generated SECRET_KEY (local settings).")
