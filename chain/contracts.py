"""The compiled contracts (``contracts/artifacts/*.json``, committed) and the record id.

No Django import: the bench and the contract tests use it too.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "contracts" / "artifacts"
CONTRACT_NAMES = ("Reputation", "ReputationFactory")
PUBLIC_KEY_BYTES = 48
"""A member's BLS public key: a compressed G1 point."""
MAX_BATCH = 100
"""``Reputation.MAX_BATCH``: most members one ``updateUsers`` transaction carries."""
UINT128_MAX = 2**128 - 1
"""Largest counter the contract stores (bytes)."""


@functools.cache
def artifact(name: str) -> dict[str, Any]:
    """The artifact of contract ``name``: ``abi``, ``bytecode``, ``deployedBytecode`` (0x hex).

    Raises:
        ValueError: an unknown contract name.
        FileNotFoundError: the artifact is missing (run ``npm run compile``).
    """
    if name not in CONTRACT_NAMES:
        raise ValueError(f"unknown contract {name!r}")
    return json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())


def record_id(public_key: bytes) -> bytes:
    """A member's 32-byte on-chain key: keccak256 of their 48-byte BLS public key.

    Raises:
        ValueError: ``public_key`` is not 48 bytes.
    """
    public_key = bytes(public_key)
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"a BLS public key is {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}")
    return keccak(public_key)


@functools.cache
def _error_table() -> dict[bytes, tuple[str, list[str], list[str]]]:
    table: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for name in CONTRACT_NAMES:
        for item in artifact(name)["abi"]:
            if item["type"] != "error":
                continue
            types = [arg["type"] for arg in item["inputs"]]
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            table[selector] = (item["name"], types, [arg["name"] for arg in item["inputs"]])
    return table


def decode_revert(data: bytes | str | None) -> str:
    """A readable form of revert data: a custom error of our contracts with its arguments
    (``CounterDecreased(id=0x..)``), ``Error(string)`` and ``Panic(uint256)`` messages, or the
    raw hex when unknown. Never raises."""
    try:
        if data is None:
            return "reverted (no reason)"
        if isinstance(data, str):
            text = data[2:] if data.startswith("0x") else data
            data = bytes.fromhex(text)
        data = bytes(data)
        if len(data) < 4:
            return "reverted (no reason)"
        selector, body = data[:4], data[4:]
        if selector == function_signature_to_4byte_selector("Error(string)"):
            return f"Error({abi_decode(['string'], body)[0]!r})"
        if selector == function_signature_to_4byte_selector("Panic(uint256)"):
            return f"Panic({abi_decode(['uint256'], body)[0]:#x})"
        known = _error_table().get(selector)
        if known is None:
            return f"reverted with 0x{data.hex()}"
        error_name, types, names = known
        values = abi_decode(types, body)
        args = ", ".join(
            f"{arg}={_show(value, kind)}"
            for arg, kind, value in zip(names, types, values, strict=True)
        )
        return f"{error_name}({args})"
    except Exception:  # a reason is a courtesy; never fail on it
        return "reverted (undecodable reason)"


def revert_name(reason: str) -> str:
    """The error's name in a :func:`decode_revert` string (``CounterDecreased``)."""
    return reason.split("(", 1)[0]


def _show(value: object, kind: str) -> str:
    if kind == "address":
        return to_checksum_address(str(value))
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)
