"""PBTS receipts client: keys, signing receipts, aggregating them and talking to the site.

Plain Python (standard library, py_ecc, optionally pyblst); importing it needs no Django.
The command line is ``python -m receipts.client`` (:mod:`receipts.client.cli`).

Who does what: the downloader signs a receipt for each piece it got from an uploader
(:func:`sign_receipt`) and hands it to the uploader; the uploader aggregates the receipts it
collected (:func:`aggregate_signed`) and reports them to the site (:func:`report`).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Sequence
from typing import Any

from receipts import bls
from receipts.client import http
from receipts.client.errors import ClientError
from receipts.client.keyfile import KeyPair, create_key_file, load_key_file
from receipts.format import Receipt, time_bucket

__all__ = [
    "ClientError",
    "KeyPair",
    "aggregate_signed",
    "b64decode",
    "b64encode",
    "create_key_file",
    "load_key_file",
    "register",
    "registration_body",
    "report",
    "report_body",
    "sign_receipt",
    "status",
]


def b64encode(data: bytes) -> str:
    """Standard base64 with padding, as text."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object, what: str) -> bytes:
    """Strict standard base64. Raises ClientError("bad_input") naming ``what``."""
    if not isinstance(text, str):
        raise ClientError("bad_input", f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ClientError("bad_input", f"{what} is not valid base64") from None


def registration_body(keypair: KeyPair) -> dict[str, str]:
    """{"public_key": b64, "pop": b64}: the key and its proof of possession
    (draft-irtf-cfrg-bls-signature-05 section 3.3.2), which the site requires before it
    accepts receipts signed by or naming this key."""
    return {"public_key": keypair.pk_b64, "pop": b64encode(bls.pop_prove(keypair.sk))}


def sign_receipt(
    keypair: KeyPair,
    *,
    realm: bytes,
    info_hash: bytes,
    piece_index: int,
    piece_length: int,
    uploader_pk: bytes,
    unix_time: float | None = None,
    backend: str | None = None,
) -> dict[str, str]:
    """As the downloader (``keypair``), sign a receipt for one piece received from
    ``uploader_pk`` at ``unix_time`` (default now).

    Returns {"receipt": b64 of the 181 bytes, "receipt_id": hex SHA-256, "signature": b64}.
    Raises ClientError("bad_input") for a field of the wrong length or range.
    """
    now = time.time() if unix_time is None else unix_time
    try:
        receipt = Receipt(
            realm=realm,
            info_hash=info_hash,
            piece_index=piece_index,
            piece_length=piece_length,
            uploader_pk=uploader_pk,
            downloader_pk=keypair.pk,
            time_bucket=time_bucket(now),
        )
        data = receipt.to_bytes()
    except ValueError as exc:
        raise ClientError("bad_input", str(exc)) from None
    signature = bls.sign(keypair.sk, data, backend=backend)
    return {
        "receipt": b64encode(data),
        "receipt_id": receipt.receipt_id.hex(),
        "signature": b64encode(signature),
    }


def aggregate_signed(signed: Sequence[Any], *, backend: str = "blst") -> dict[str, Any]:
    """One uploader's signed receipts -> {"receipts": [b64, ...], "aggregate_signature": b64}.

    ``signed``: objects {"receipt": b64, "signature": b64} (as :func:`sign_receipt` returns).
    Every signature is checked first (against the receipt's downloader key), because one bad
    signature would spoil the whole aggregate. Raises ClientError with code "bad_input" (empty,
    malformed, or not all of one realm and one uploader), "duplicate_receipt" or
    "invalid_signature" (with the indexes).
    """
    parsed = [_parse_signed(i, entry) for i, entry in enumerate(_as_list(signed))]
    if not parsed:
        raise ClientError("bad_input", "no receipts to aggregate")
    _check_one_report(parsed)
    items = [bls.SignedItem((r.downloader_pk,), (data,), sig) for data, r, sig in parsed]
    bad = bls.find_invalid(bls.get_backend(backend), items)
    if bad:
        raise ClientError("invalid_signature", "some signatures do not verify", indexes=bad)
    aggregate = bls.aggregate([sig for _, _, sig in parsed], backend=backend)
    return {
        "receipts": [b64encode(data) for data, _, _ in parsed],
        "aggregate_signature": b64encode(aggregate),
    }


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, dict) and isinstance(value.get("receipts"), list):
        value = value["receipts"]
    if not isinstance(value, list):
        raise ClientError("bad_input", "expected a JSON list of signed receipts")
    return value


def _parse_signed(index: int, entry: Any) -> tuple[bytes, Receipt, bytes]:
    """(receipt bytes, Receipt, signature) of one {"receipt", "signature"} object."""
    if not isinstance(entry, dict):
        raise ClientError("bad_input", f"receipt {index} is not an object", index=index)
    data = b64decode(entry.get("receipt"), f"receipts[{index}].receipt")
    signature = b64decode(entry.get("signature"), f"receipts[{index}].signature")
    return data, _parse_receipt(index, data), signature


def _parse_receipt(index: int, data: bytes) -> Receipt:
    try:
        return Receipt.from_bytes(data)
    except ValueError as exc:
        raise ClientError("bad_input", f"receipt {index}: {exc}", index=index) from None


def _check_one_report(parsed: Sequence[tuple[bytes, Receipt, bytes]]) -> None:
    """A report is one uploader's receipts for one site, each receipt once."""
    seen: dict[bytes, int] = {}
    duplicates = [i for i, (data, _, _) in enumerate(parsed) if seen.setdefault(data, i) != i]
    if duplicates:
        raise ClientError("duplicate_receipt", "a receipt appears twice", indexes=duplicates)
    if len({r.realm for _, r, _ in parsed}) != 1:
        raise ClientError("bad_input", "receipts from more than one realm (site)")
    if len({r.uploader_pk for _, r, _ in parsed}) != 1:
        raise ClientError("bad_input", "receipts name more than one uploader")


def report_body(document: Any) -> dict[str, Any]:
    """The POST /report body from what ``aggregate`` printed ({"receipts": [b64...],
    "aggregate_signature": b64}) or from signed receipts (a list, or {"receipts": [...]}, of
    {"receipt", "signature"}). Raises ClientError("bad_input") for anything else."""
    if isinstance(document, dict) and "aggregate_signature" in document:
        receipts = document.get("receipts")
        if not isinstance(receipts, list) or not receipts:
            raise ClientError("bad_input", "an aggregate needs a non-empty receipts list")
        for i, receipt in enumerate(receipts):
            _parse_receipt(i, b64decode(receipt, f"receipts[{i}]"))
        b64decode(document["aggregate_signature"], "aggregate_signature")
        return {
            "receipts": [{"receipt": receipt} for receipt in receipts],
            "aggregate_signature": document["aggregate_signature"],
        }
    entries = _as_list(document)
    if not entries:
        raise ClientError("bad_input", "no receipts to report")
    for i, entry in enumerate(entries):
        _parse_signed(i, entry)
    return {"receipts": [{"receipt": e["receipt"], "signature": e["signature"]} for e in entries]}


def register(site: str, token: str, keypair: KeyPair, *, timeout: float) -> tuple[int, Any]:
    """POST {site}/register with :func:`registration_body`. Returns (status, reply)."""
    url = http.endpoint(site, "register")
    body = registration_body(keypair)
    return http.request_json("POST", url, token=token, body=body, timeout=timeout)


def report(site: str, token: str, body: dict[str, Any], *, timeout: float) -> tuple[int, Any]:
    """POST {site}/report with a :func:`report_body`. Returns (status, reply)."""
    url = http.endpoint(site, "report")
    return http.request_json("POST", url, token=token, body=body, timeout=timeout)


def status(site: str, token: str, report_id: str, *, timeout: float) -> tuple[int, Any]:
    """GET {site}/report/<report_id>. Returns (status, reply)."""
    url = http.endpoint(site, "report", report_id)
    return http.request_json("GET", url, token=token, timeout=timeout)
