"""Helpers of the chain tests: send a contract call through the same local-signing path the
site uses (:meth:`ChainClient.prepare` + ``send_raw``), deploy, read events."""

from __future__ import annotations

from typing import Any

from web3.contract.contract import Contract

from chain.client import ChainClient, Receipt, TransactionReverted


def transact(
    client: ChainClient,
    contract: Contract,
    function: str,
    *args: Any,
    gas_limit: int | None = None,
) -> Receipt:
    """Sign and send ``contract.function(*args)`` from ``client``'s account; wait for the
    receipt. Raises TransactionReverted (simulation or on chain)."""
    signed = client.prepare(
        to=contract.address,
        data=client.call_data(contract, function, *args),
        nonce=client.nonce(),
        chain_id=client.chain_id(),
        gas_limit=gas_limit,
    )
    client.send_raw(signed.raw)
    receipt = client.wait_receipt(signed.tx_hash, timeout=10)
    if not receipt.ok:
        raise TransactionReverted("on chain")
    return receipt


def deploy(client: ChainClient, name: str, *args: Any) -> Contract:
    """Deploy contract ``name`` from ``client``'s account."""
    return client.deploy(name, *args, timeout=10)[0]


def events(contract: Contract, receipt: Receipt, name: str) -> list[dict[str, Any]]:
    """The ``name`` events of ``contract`` in ``receipt``, as dicts of their arguments."""
    event = getattr(contract.events, name)()
    found = []
    for log in receipt.logs:
        if log["address"].lower() != contract.address.lower():
            continue
        try:
            found.append(dict(event.process_log(log)["args"]))
        except Exception:  # another event of the same contract
            continue
    return found


def create_reputation(
    client: ChainClient, factory: Contract, referrer: str, attestation: bytes = b""
) -> Contract:
    """``factory.createReputation(referrer, attestation)`` from ``client``; the new contract."""
    receipt = transact(client, factory, "createReputation", referrer, attestation)
    (created,) = events(factory, receipt, "ReputationCreated")
    return client.contract("Reputation", created["newAddress"])
