"""``python -m receipts.client``: every subcommand prints one JSON document on stdout and exits
with 0, or prints {"error": ..., "message": ...} on stdout and exits with 1 (2 for bad usage).

    keygen   --out FILE
    register --site URL [--token T] --key FILE
    sign     --key FILE --realm HEX --info-hash HEX --piece-index N --piece-length N
             --uploader-pk B64 [--time UNIX]
    aggregate [FILE|-]
    report   --site URL [--token T] FILE|-
    status   --site URL [--token T] REPORT_ID

The token defaults to the PBTS_TOKEN environment variable (a command line is visible to other
users of the machine). The secret key is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from receipts import client
from receipts.client import http
from receipts.client.errors import ClientError

TOKEN_ENV = "PBTS_TOKEN"
Handler = Callable[[argparse.Namespace], Any]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        result = args.handler(args)
    except ClientError as exc:
        _print(exc.to_json())
        return 1
    _print(result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand's handler is in ``args.handler``."""
    parser = argparse.ArgumentParser(
        prog="python -m receipts.client",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = _command(commands, "keygen", cmd_keygen, "create a key file (mode 0600)")
    keygen.add_argument("--out", required=True, help="key file to create (never overwritten)")
    register = _command(commands, "register", cmd_register, "register the key and its PoP")
    _site_arguments(register)
    register.add_argument("--key", required=True, help="key file")
    sign = _command(commands, "sign", cmd_sign, "sign a receipt for a piece (downloader)")
    _sign_arguments(sign)
    aggregate = _command(commands, "aggregate", cmd_aggregate, "aggregate signed receipts")
    aggregate.add_argument("--backend", choices=("blst", "py_ecc"), default="blst")
    aggregate.add_argument("file", nargs="?", default="-", help="JSON file (default: stdin)")
    report = _command(commands, "report", cmd_report, "report receipts to the site (uploader)")
    _site_arguments(report)
    report.add_argument("file", help="JSON file, - for stdin")
    status = _command(commands, "status", cmd_status, "show a report's status")
    _site_arguments(status)
    status.add_argument("report_id")
    return parser


def _command(commands: Any, name: str, handler: Handler, help_text: str) -> Any:
    sub = commands.add_parser(name, help=help_text, description=help_text)
    sub.set_defaults(handler=handler)
    return sub


def _site_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--site", required=True, help="the site's receipts API base URL")
    sub.add_argument("--token", help=f"API token (default: ${TOKEN_ENV})")
    sub.add_argument("--timeout", type=float, default=http.DEFAULT_TIMEOUT, help="seconds")


def _sign_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--key", required=True, help="the downloader's key file")
    sub.add_argument("--realm", required=True, help="the site's realm id, 64 hex digits")
    sub.add_argument("--info-hash", required=True, help="40 hex digits")
    sub.add_argument("--piece-index", type=int, required=True)
    sub.add_argument("--piece-length", type=int, required=True, help="bytes in the piece")
    sub.add_argument("--uploader-pk", required=True, help="the uploader's public key, base64")
    sub.add_argument("--time", type=float, help="unix time of receipt (default: now)")
    sub.add_argument("--backend", choices=("blst", "py_ecc"), default="blst")


def cmd_keygen(args: argparse.Namespace) -> dict[str, Any]:
    keypair = client.create_key_file(args.out)
    return {"key_file": str(args.out), "public_key": keypair.pk_b64}


def cmd_register(args: argparse.Namespace) -> dict[str, Any]:
    keypair = client.load_key_file(args.key)
    code, reply = client.register(args.site, _token(args), keypair, timeout=args.timeout)
    return {"status": code, "response": reply, "public_key": keypair.pk_b64}


def cmd_sign(args: argparse.Namespace) -> dict[str, str]:
    keypair = client.load_key_file(args.key)
    return client.sign_receipt(
        keypair,
        realm=_hex(args.realm, "--realm"),
        info_hash=_hex(args.info_hash, "--info-hash"),
        piece_index=args.piece_index,
        piece_length=args.piece_length,
        uploader_pk=client.b64decode(args.uploader_pk, "--uploader-pk"),
        unix_time=args.time,
        backend=args.backend,
    )


def cmd_aggregate(args: argparse.Namespace) -> dict[str, Any]:
    return client.aggregate_signed(_read_json(args.file), backend=args.backend)


def cmd_report(args: argparse.Namespace) -> dict[str, Any]:
    body = client.report_body(_read_json(args.file))
    code, reply = client.report(args.site, _token(args), body, timeout=args.timeout)
    return {"status": code, "response": reply}


def cmd_status(args: argparse.Namespace) -> dict[str, Any]:
    code, reply = client.status(args.site, _token(args), args.report_id, timeout=args.timeout)
    return {"status": code, "response": reply}


def _token(args: argparse.Namespace) -> str:
    token = args.token or os.environ.get(TOKEN_ENV, "")
    if not token:
        raise ClientError("bad_input", f"no token: pass --token or set {TOKEN_ENV}")
    return token


def _hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ClientError("bad_input", f"{what} is not hex") from None


def _read_json(path: str) -> Any:
    try:
        if path == "-":
            return json.load(sys.stdin)
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise ClientError("bad_input", f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ClientError("bad_input", f"{path} is not JSON: {exc}") from None


def _print(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
