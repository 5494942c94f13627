"""The web3 client: one account (a private key held in memory, never logged or shown), one RPC
endpoint, transactions signed locally.

It only talks to the chain; the bookkeeping (nonces under a lock, push records, reconciliation)
is in :mod:`chain.services`. Every failure is one of the :class:`ChainError` subclasses below,
whose messages never contain the key or the RPC URL (which may embed an API token). No Django
import.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import Contract, ContractFunction
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    ProviderConnectionError,
    RequestTimedOut,
    TooManyRequests,
    TransactionNotFound,
    Web3RPCError,
)

from chain.contracts import artifact, decode_revert, revert_name

T = TypeVar("T")

GAS_MARGIN = 1.25
"""Gas limit = estimate x this (a bare estimate can run out of gas when a transaction writes
``block.timestamp``; docs/toolchain.md)."""

_TRANSIENT = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    ProviderConnectionError,
    RequestTimedOut,
    TooManyRequests,
    ConnectionError,
    TimeoutError,
)


class ChainError(Exception):
    """A chain operation failed. ``status`` is the code shown in admin and ``/contract/status``
    (see ``chain.models.ChainStatus``)."""

    status = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ChainNotConfigured(ChainError):
    """``PBTS_CHAIN_RPC_URL``/``PBTS_CHAIN_PRIVATE_KEY`` unset, or no contract yet."""

    status = "not_configured"


class ChainUnavailable(ChainError):
    """The RPC endpoint did not answer (after retries). Transient: try again later."""

    status = "rpc_down"


class WrongChain(ChainError):
    """The RPC endpoint serves another chain id than the one the contracts live on."""

    status = "wrong_chain"


class InsufficientFunds(ChainError):
    """The account cannot pay for the transaction's gas (wei)."""

    status = "no_funds"


class NotOwner(ChainError):
    """The configured account does not own the contract it should write."""

    status = "not_owner"


class TransactionReverted(ChainError):
    """The transaction reverted, in simulation (``estimate_gas``/``eth_call``) or on chain.

    ``reason`` is the decoded error (``CounterDecreased(id=0x..)``), ``name`` its name.
    """

    status = "reverted"

    def __init__(self, reason: str) -> None:
        super().__init__(f"reverted: {reason}")
        self.reason = reason
        self.name = revert_name(reason)


class TransactionPending(ChainError):
    """No receipt within the wait; the transaction may still be mined (reconcile later)."""

    status = "pending"


class NonceTooLow(ChainError):
    """The node refused the transaction: its nonce was already used."""

    status = "error"


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A signed transaction: ``tx_hash`` (32 bytes), ``raw`` (the RLP bytes to broadcast, public
    once sent), ``nonce``, ``gas_limit`` (gas) and ``max_fee`` (wei per gas)."""

    tx_hash: bytes
    raw: bytes
    nonce: int
    gas_limit: int
    max_fee: int


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the site keeps of a receipt: ``ok`` (status 1), block number, gas used (gas),
    the effective gas price (wei per gas), the raw logs, and the created contract's address
    (deployments only)."""

    tx_hash: bytes
    ok: bool
    block_number: int
    gas_used: int
    effective_gas_price: int
    logs: list[Any]
    contract_address: str | None = None


class ChainClient:
    """An RPC endpoint and the site's account.

    Args:
        rpc_url: JSON-RPC over HTTP(S).
        private_key: the account's secp256k1 key (0x hex); kept in memory only.
        request_timeout: seconds per RPC request.
        retries: attempts of each read on a transient RPC error (backoff 0.2 s, 0.4 s, ...).

    Raises:
        ChainNotConfigured: an empty URL or key, or a key that is not a valid private key.
    """

    def __init__(
        self,
        rpc_url: str,
        private_key: str,
        *,
        request_timeout: float = 10.0,
        retries: int = 3,
    ) -> None:
        if not rpc_url or not private_key:
            raise ChainNotConfigured(
                "Chain not configured: set PBTS_CHAIN_RPC_URL and PBTS_CHAIN_PRIVATE_KEY."
            )
        try:
            self._account: LocalAccount = Account.from_key(private_key)
        except Exception:  # never echo the value
            raise ChainNotConfigured("PBTS_CHAIN_PRIVATE_KEY is not a valid private key.") from None
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": request_timeout}))
        self.retries = max(1, retries)

    def __repr__(self) -> str:
        return f"<ChainClient account={self.address}>"

    @property
    def address(self) -> str:
        """The account's checksummed address."""
        return str(self._account.address)

    # -- plumbing -------------------------------------------------------------------------

    def rpc(self, fn: Callable[[], T]) -> T:
        """Run one RPC read, retrying transient failures; raise ChainUnavailable after the
        last attempt (the message names the error class only, never the URL)."""
        for attempt in range(self.retries):
            try:
                return fn()
            except _TRANSIENT as exc:
                if attempt + 1 == self.retries:
                    raise ChainUnavailable(
                        f"RPC endpoint unreachable ({type(exc).__name__})"
                    ) from None
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def contract(self, name: str, address: str) -> Contract:
        """Contract ``name`` (``Reputation`` or ``ReputationFactory``) at ``address``."""
        return self.w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=artifact(name)["abi"]
        )

    # -- reads ------------------------------------------------------------------------------

    def chain_id(self) -> int:
        """The chain id the endpoint serves (read every time, never assumed)."""
        return int(self.rpc(lambda: self.w3.eth.chain_id))

    def balance(self, address: str | None = None) -> int:
        """Balance in wei of ``address`` (the account by default)."""
        who = Web3.to_checksum_address(address or self.address)
        return int(self.rpc(lambda: self.w3.eth.get_balance(who)))

    def nonce(self, block: str = "pending") -> int:
        """The account's transaction count at ``block`` ("pending" or "latest")."""
        return int(self.rpc(lambda: self.w3.eth.get_transaction_count(self.address, block)))

    def code_at(self, address: str) -> bytes:
        """Deployed bytecode at ``address`` (empty: no contract)."""
        who = Web3.to_checksum_address(address)
        return bytes(self.rpc(lambda: self.w3.eth.get_code(who)))

    def call(self, fn: ContractFunction) -> Any:
        """``eth_call`` of a view. Raises TransactionReverted with the decoded reason."""
        try:
            return self.rpc(lambda: fn.call({"from": self.address}))
        except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
            raise TransactionReverted(decode_revert(_revert_data(exc))) from None

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        """The receipt of ``tx_hash``, or None while it is not mined (or unknown)."""
        try:
            raw = self.rpc(lambda: self.w3.eth.get_transaction_receipt(tx_hash))
        except TransactionNotFound:
            return None
        if raw is None:
            return None
        return Receipt(
            tx_hash=bytes(raw["transactionHash"]),
            ok=raw["status"] == 1,
            block_number=int(raw["blockNumber"]),
            gas_used=int(raw["gasUsed"]),
            effective_gas_price=int(raw.get("effectiveGasPrice", 0)),
            logs=list(raw["logs"]),
            contract_address=raw.get("contractAddress"),
        )

    def transaction_known(self, tx_hash: bytes) -> bool:
        """Whether the node knows ``tx_hash`` (in its pool or mined)."""
        try:
            return self.rpc(lambda: self.w3.eth.get_transaction(tx_hash)) is not None
        except TransactionNotFound:
            return False

    def wait_receipt(self, tx_hash: bytes, *, timeout: float, poll: float = 0.1) -> Receipt:
        """Poll for the receipt up to ``timeout`` seconds.

        Raises:
            TransactionPending: not mined in time (nothing is lost: reconcile later).
            ChainUnavailable: the endpoint stopped answering.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.receipt(tx_hash)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise TransactionPending(f"0x{tx_hash.hex()} not mined within {timeout:g} s")
            time.sleep(poll)

    def revert_reason(self, tx: dict[str, Any], block_number: int) -> str:
        """Why a mined transaction reverted: it is replayed with ``eth_call`` on the state
        before its block. Out-of-gas leaves no revert data: "out of gas or reverted without
        reason". Never raises."""
        call = {k: tx[k] for k in ("from", "to", "data", "gas", "value") if k in tx}
        try:
            self.w3.eth.call(call, max(0, block_number - 1))
        except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
            return decode_revert(_revert_data(exc))
        except Web3RPCError as exc:
            text = str(getattr(exc, "message", "") or exc).lower()
            if "out of gas" in text:
                return "out of gas"
            return "reverted (reason unavailable)"
        except Exception:
            return "reverted (reason unavailable)"
        return "out of gas or reverted without reason"

    # -- writes ------------------------------------------------------------------------------

    def estimate(self, tx: dict[str, Any]) -> int:
        """``estimate_gas`` of ``tx`` (gas). Raises TransactionReverted with the decoded
        reason when the call would revert, InsufficientFunds when the node says so."""
        try:
            return int(self.rpc(lambda: self.w3.eth.estimate_gas(tx)))
        except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
            raise TransactionReverted(decode_revert(_revert_data(exc))) from None
        except Web3RPCError as exc:
            raise _classify_rpc_error(exc) from None

    def fees(self) -> tuple[int, int]:
        """EIP-1559 fees (wei per gas): (max fee, max priority fee); the max fee allows the
        base fee to double."""
        block = self.rpc(lambda: self.w3.eth.get_block("latest"))
        base = int(block.get("baseFeePerGas") or 0)
        try:
            tip = int(self.rpc(lambda: self.w3.eth.max_priority_fee))
        except Web3RPCError:
            tip = 10**9
        return 2 * base + tip, tip

    def prepare(
        self,
        *,
        to: str | None,
        data: bytes | str,
        nonce: int,
        chain_id: int,
        gas_limit: int | None = None,
    ) -> SignedTx:
        """Estimate (unless ``gas_limit``), price and sign a transaction locally.

        ``to`` None deploys ``data`` (init code). Checks the balance covers gas x max fee.

        Raises:
            TransactionReverted: the simulation reverts (nothing was signed).
            InsufficientFunds: balance below gas limit x max fee (wei).
            ChainUnavailable: the endpoint did not answer.
        """
        tx: dict[str, Any] = {"from": self.address, "data": data, "value": 0}
        if to is not None:
            tx["to"] = Web3.to_checksum_address(to)
        if gas_limit is None:
            gas_limit = int(self.estimate(tx) * GAS_MARGIN)
        max_fee, tip = self.fees()
        needed = gas_limit * max_fee
        balance = self.balance()
        if balance < needed:
            raise InsufficientFunds(
                f"account {self.address} holds {balance} wei; this transaction may cost up to "
                f"{needed} wei ({gas_limit} gas at {max_fee} wei)"
            )
        tx.update(
            nonce=nonce,
            chainId=chain_id,
            gas=gas_limit,
            maxFeePerGas=max_fee,
            maxPriorityFeePerGas=tip,
            type=2,
        )
        signed = self._account.sign_transaction(tx)
        return SignedTx(
            tx_hash=bytes(signed.hash),
            raw=bytes(signed.raw_transaction),
            nonce=nonce,
            gas_limit=gas_limit,
            max_fee=max_fee,
        )

    def send_raw(self, raw: bytes) -> bytes:
        """Broadcast a signed transaction; returns its hash. Sending the same bytes twice is
        harmless (one nonce, one hash): "already known" counts as success.

        Raises:
            InsufficientFunds, NonceTooLow, ChainUnavailable, ChainError (other refusals).
        """
        try:
            return bytes(self.rpc(lambda: self.w3.eth.send_raw_transaction(raw)))
        except Web3RPCError as exc:
            error = _classify_rpc_error(exc)
            if isinstance(error, _AlreadyKnown):
                return bytes(Web3.keccak(raw))
            raise error from None

    def deploy(self, name: str, *args: Any, timeout: float = 30.0) -> tuple[Contract, Receipt]:
        """Deploy contract ``name`` with constructor ``args`` from this client's account and
        wait for it (at most ``timeout`` seconds); for development chains, tests and benches
        (the site's own deployments go through ``chain.services.deploy``, which journals).

        Raises:
            TransactionReverted: the deployment reverted.
            TransactionPending: not mined in time.
        """
        data = self.deploy_data(name, *args)
        signed = self.prepare(to=None, data=data, nonce=self.nonce(), chain_id=self.chain_id())
        self.send_raw(signed.raw)
        receipt = self.wait_receipt(signed.tx_hash, timeout=timeout)
        if not receipt.ok or receipt.contract_address is None:
            raise TransactionReverted(f"deployment of {name}")
        return self.contract(name, receipt.contract_address), receipt

    def deploy_data(self, name: str, *args: Any) -> bytes:
        """Init code deploying contract ``name``: its bytecode then the ABI-encoded
        constructor ``args``."""
        spec = artifact(name)
        constructor = next((i for i in spec["abi"] if i["type"] == "constructor"), None)
        types = [arg["type"] for arg in constructor["inputs"]] if constructor else []
        return bytes.fromhex(spec["bytecode"][2:]) + abi_encode(types, list(args))

    @staticmethod
    def call_data(contract: Contract, function: str, *args: Any) -> str:
        """Calldata (0x hex) of ``contract.function(*args)``."""
        return str(contract.encode_abi(function, args=list(args)))


class _AlreadyKnown(ChainError):
    pass


def _revert_data(exc: Exception) -> Any:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    return data


def _classify_rpc_error(exc: Web3RPCError) -> ChainError:
    text = str(getattr(exc, "message", "") or exc).lower()
    if "insufficient funds" in text:
        return InsufficientFunds("the account cannot pay for this transaction's gas")
    if "already known" in text or "known transaction" in text or "already imported" in text:
        return _AlreadyKnown("already known")
    if "nonce too low" in text:
        return NonceTooLow("nonce already used")
    return ChainError(f"the node refused the transaction: {text[:200]}")
