"""The message a member signs to ask for their migration (no Django import: the member's
command-line signer uses it too)."""

from __future__ import annotations

MESSAGE_PREFIX = b"PBTS chain migration v1\x00"
"""Domain tag (24 bytes): no receipt or other PBTS message starts so."""
MESSAGE_LENGTH = 24 + 32 + 20 + 32 + 8 + 32
"""148 bytes."""


def migration_message(
    *, chain_id: int, contract: str, record: bytes, member_id: int, challenge: bytes
) -> bytes:
    """``MESSAGE_PREFIX`` (24) || chain id (uint256 BE, 32) || the new site's Reputation
    address (20) || record id = keccak256(BLS public key) (32) || member id on the new site
    (uint64 BE, 8) || random challenge (32): 148 bytes.

    Raises:
        ValueError: a field of the wrong size.
    """
    address = bytes.fromhex(contract[2:] if contract.startswith("0x") else contract)
    record, challenge = bytes(record), bytes(challenge)
    if len(address) != 20 or len(record) != 32 or len(challenge) != 32:
        raise ValueError("contract is 20 bytes, record and challenge 32 bytes each")
    message = (
        MESSAGE_PREFIX
        + int(chain_id).to_bytes(32, "big")
        + address
        + record
        + int(member_id).to_bytes(8, "big")
        + challenge
    )
    assert len(message) == MESSAGE_LENGTH
    return message
