"""``python -m chain.sign_migration --key KEYFILE MESSAGE_HEX``: sign a migration challenge
with your BLS key file (made by ``python -m receipts.client keygen``) on your own machine, and
print the signature (base64) to paste on your profile or POST to
``/api/v1/chain/migrations/<id>/signature``.

Refuses anything that is not a PBTS migration message (so the key cannot be tricked into
signing a receipt). The secret key never leaves the key file's process.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Sequence

from chain.message import MESSAGE_LENGTH, MESSAGE_PREFIX


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input)."""
    parser = argparse.ArgumentParser(prog="python -m chain.sign_migration", description=__doc__)
    parser.add_argument("--key", required=True, help="your BLS key file (mode 0600)")
    parser.add_argument("message", help="the challenge message shown by the site, hex")
    args = parser.parse_args(argv)
    from receipts.bls import sign
    from receipts.client import load_key_file
    from receipts.client.errors import ClientError

    try:
        text = args.message.strip()
        message = bytes.fromhex(text[2:] if text.startswith("0x") else text)
    except ValueError:
        print("the message must be hex", file=sys.stderr)
        return 2
    if len(message) != MESSAGE_LENGTH or not message.startswith(MESSAGE_PREFIX):
        print("not a PBTS migration challenge; refusing to sign", file=sys.stderr)
        return 2
    try:
        keypair = load_key_file(args.key)
    except ClientError as exc:
        print(exc.message if hasattr(exc, "message") else str(exc), file=sys.stderr)
        return 2
    signature = sign(keypair.sk, message)
    print(json.dumps({"signature": base64.b64encode(signature).decode("ascii")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
