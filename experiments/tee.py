"""The TEE provider of the experiments: Phala dstack (Intel TDX) through its Python SDK.

The original PBTS derived its tracker key inside a dstack enclave and attached a quote to the
contract it created (docs/origin.md section 5). Here the harness measures the same two calls
when a TEE is present:

- key derivation: ``DstackClient.get_key(path, purpose)`` -> ``GetKeyResponse.key`` (hex of a
  32-byte secret), used as the input keying material of BLS KeyGen;
- quote: ``DstackClient.get_quote(report_data)`` (at most 64 bytes) -> the TDX quote bytes.

Protocol (dstack-sdk 0.5.4, ``dstack_sdk/dstack_client.py``): JSON over HTTP, ``POST /GetKey``
``{"path", "purpose", "algorithm"}``, ``POST /GetQuote`` ``{"report_data": hex}`` and
``POST /Info`` ``{}``, to a Unix socket (the first of /var/run/dstack.sock, /run/dstack.sock,
/var/run/dstack/dstack.sock, /run/dstack/dstack.sock that exists) or to the endpoint named by
``DSTACK_SIMULATOR_ENDPOINT`` (a socket path or an http(s) URL), as the SDK itself decides.
Without the SDK, without a socket, or when the agent does not answer ``Info``, there is no TEE
and the harness runs its baseline only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Protocol

KEY_PURPOSE = "pbts-bls-keygen"
NO_TEE = "no TEE: baseline only"


class TeeProvider(Protocol):
    """What the harness needs from a TEE."""

    name: str

    def derive_key(self, path: str) -> bytes:
        """A secret derived inside the TEE for ``path`` (the same path gives the same bytes)."""
        ...

    def quote(self, report_data: bytes) -> bytes:
        """A hardware quote binding ``report_data`` (<= 64 bytes)."""
        ...


class DstackTee:
    """:class:`TeeProvider` over ``dstack_sdk.DstackClient`` (synchronous client)."""

    name = "dstack"

    def __init__(self, endpoint: str) -> None:
        from dstack_sdk import DstackClient

        self.endpoint = endpoint
        self.client = DstackClient(endpoint)

    def info(self) -> Any:
        """The agent's ``InfoResponse`` (app id, instance id, TCB info)."""
        return self.client.info()

    def derive_key(self, path: str) -> bytes:
        """``GetKey(path, purpose=KEY_PURPOSE)``: the derived secret's bytes (32 for the SDK's
        default secp256k1 algorithm)."""
        return self.client.get_key(path, KEY_PURPOSE).decode_key()

    def quote(self, report_data: bytes) -> bytes:
        """``GetQuote(report_data)``: the raw quote bytes."""
        return self.client.get_quote(report_data).decode_quote()


@dataclass(frozen=True)
class TeeStatus:
    """The provider found (``None`` without a TEE) and a one-line status for the report,
    starting with "TEE:" or with :data:`NO_TEE`."""

    provider: DstackTee | None
    description: str

    @property
    def present(self) -> bool:
        return self.provider is not None


def detect() -> TeeStatus:
    """Look for a dstack agent the way dstack's SDK does (see the module docstring); never
    raises: every failure is a "no TEE" status naming its reason."""
    try:
        from dstack_sdk.dstack_client import get_endpoint
    except ImportError:
        return TeeStatus(None, f"{NO_TEE} (the dstack-sdk package is not installed)")
    endpoint = get_endpoint(None)
    if not endpoint.startswith(("http://", "https://")) and not os.path.exists(endpoint):
        return TeeStatus(None, f"{NO_TEE} (no dstack socket at {endpoint})")
    try:
        tee = DstackTee(endpoint)
        info = tee.info()
    except Exception as exc:  # an agent that does not answer is no TEE, not a crash
        return TeeStatus(None, f"{NO_TEE} (dstack at {endpoint} did not answer: {exc!r:.200})")
    version = metadata.version("dstack-sdk")
    return TeeStatus(
        tee,
        f"TEE: dstack at {endpoint} (app_id {info.app_id}, instance {info.instance_id}, "
        f"app {info.app_name}; dstack-sdk {version})",
    )
