"""The member's BLS key on disk: a small JSON file readable by its owner only (mode 0600).

    {"format": "pbts-bls-key", "version": 1, "secret_key": "<64 hex digits>",
     "public_key": "<base64 of the 48-byte compressed G1 key>"}

The secret key never leaves this file: nothing here prints or sends it.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from receipts.bls import keygen, sk_to_pk
from receipts.client.errors import ClientError

KEY_FILE_FORMAT = "pbts-bls-key"
KEY_FILE_VERSION = 1


@dataclass(frozen=True, slots=True)
class KeyPair:
    """sk: the secret scalar (never in repr); pk: the 48-byte compressed public key."""

    sk: int = field(repr=False)
    pk: bytes

    @property
    def pk_b64(self) -> str:
        return base64.b64encode(self.pk).decode("ascii")


def create_key_file(path: str | os.PathLike[str], ikm: bytes | None = None) -> KeyPair:
    """Generate a key (KeyGen from ``ikm``, or 32 random bytes) and write it to ``path`` with
    mode 0600. Raises ClientError("key_file_exists") rather than overwrite a key, and
    ClientError("bad_key_file") when the file cannot be written."""
    sk, pk = keygen(ikm)
    document = {
        "format": KEY_FILE_FORMAT,
        "version": KEY_FILE_VERSION,
        "secret_key": f"{sk:064x}",
        "public_key": base64.b64encode(pk).decode("ascii"),
    }
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ClientError("key_file_exists", f"{path} exists; not overwriting a key") from exc
    except OSError as exc:
        raise ClientError("bad_key_file", f"cannot create {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # whatever the umask was
        json.dump(document, handle)
        handle.write("\n")
    return KeyPair(sk=sk, pk=pk)


def load_key_file(path: str | os.PathLike[str]) -> KeyPair:
    """Read a key file written by :func:`create_key_file`.

    Raises ClientError("bad_key_file") when the file is missing, readable by group or others
    (like ssh, we refuse to use an exposed key), malformed, or when its public key is not the
    secret key's.
    """
    file = Path(path)
    try:
        mode = file.stat().st_mode
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ClientError("bad_key_file", f"cannot read {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ClientError("bad_key_file", f"{path} is accessible by others; chmod 600 it")
    try:
        return _parse(json.loads(text))
    except ValueError as exc:  # messages never quote the file's content (the secret key)
        raise ClientError("bad_key_file", f"{path}: {exc}") from None


def _parse(document: object) -> KeyPair:
    """The key pair of a decoded key file. Raises ValueError with a message that does not
    repeat any of the file's content."""
    if not isinstance(document, dict) or document.get("format") != KEY_FILE_FORMAT:
        raise ValueError("not a PBTS key file")
    if document.get("version") != KEY_FILE_VERSION:
        raise ValueError("unsupported key file version")
    secret, public = document.get("secret_key"), document.get("public_key")
    if not isinstance(secret, str) or len(secret) != 64:
        raise ValueError("secret_key must be 64 hex digits")
    try:
        sk = int(secret, 16)
        pk = base64.b64decode(str(public), validate=True)
    except ValueError:
        raise ValueError("secret_key or public_key is not well encoded") from None
    try:
        matches = sk_to_pk(sk) == pk
    except ValueError:
        raise ValueError("secret_key is out of range") from None
    if not matches:
        raise ValueError("public_key is not the secret key's")
    return KeyPair(sk=sk, pk=pk)
