"""Setting up this site's contracts: deploy the factory, create the Reputation contract (with
an optional predecessor), endorse a successor. Each is one transaction sent under the sender
lease and written to ``ChainConfig`` once its receipt confirms; staff actions are audited."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from web3 import Web3

from chain.client import ChainClient, ChainError, Receipt, TransactionReverted
from chain.contracts import artifact
from chain.models import ChainConfig
from chain.selectors import chain_config
from chain.services.transactions import chain_work, lease_renew
from core.audit import audit_record
from core.errors import Conflict, InvalidInput
from tracker.models import Member

ZERO_ADDRESS = "0x" + "00" * 20


def checksum(address: str, *, field: str = "address") -> str:
    """``address`` checksummed. Raises InvalidInput for anything but 20 bytes of hex."""
    try:
        if not Web3.is_address(address):
            raise ValueError
        return str(Web3.to_checksum_address(address))
    except (ValueError, TypeError):
        raise InvalidInput("Not an Ethereum address (0x and 40 hex digits).", field=field) from None


def _send_and_wait(
    client: ChainClient, config: ChainConfig, token: str, *, to: str | None, data: str | bytes
) -> Receipt:
    """Send one set-up transaction and wait for its receipt (no record table: the outcome is
    written to ``ChainConfig``). Raises TransactionReverted, including for a mined status 0."""
    chain_id = int(config.chain_id or client.chain_id())
    signed = client.prepare(to=to, data=data, nonce=client.nonce("pending"), chain_id=chain_id)
    lease_renew(token)
    client.send_raw(signed.raw)
    receipt = client.wait_receipt(signed.tx_hash, timeout=settings.PBTS_CHAIN_RECEIPT_TIMEOUT)
    if not receipt.ok:
        tx = {"from": client.address, "data": data, "gas": signed.gas_limit}
        if to:
            tx["to"] = to
        raise TransactionReverted(client.revert_reason(tx, receipt.block_number))
    return receipt


def _config_record(
    config: ChainConfig, *, actor: Member | None, action: str, audited: dict, **extra: str
) -> None:
    """Write ``audited`` (field -> new value) and ``extra`` fields to the site's
    ``ChainConfig`` in one transaction, with an audit row of the audited fields' old and new
    values; ``config`` is refreshed."""
    with transaction.atomic():
        old = {name: getattr(config, name) for name in audited}
        ChainConfig.objects.filter(pk=1).update(**audited, **extra)
        config.refresh_from_db()
        audit_record(actor=actor, action=action, target=config, old=old, new=audited)


def factory_deploy(*, actor: Member | None = None, replace: bool = False) -> str:
    """Deploy a ReputationFactory from the site's account; returns its address.

    Raises:
        Conflict: a factory is recorded already (pass ``replace``).
        ChainError: see :func:`chain.services.transactions.chain_work`.
    """
    config = chain_config()
    if config.factory_address and not replace:
        raise Conflict(f"A factory is recorded already: {config.factory_address}.")

    def work(client: ChainClient, config: ChainConfig, token: str) -> str:
        chain_id = client.chain_id()
        receipt = _send_and_wait(
            client, config, token, to=None, data=client.deploy_data("ReputationFactory")
        )
        address = str(Web3.to_checksum_address(receipt.contract_address))
        _config_record(
            config,
            actor=actor,
            action="chain_factory_deploy",
            audited={"factory_address": address, "chain_id": chain_id},
            owner_address=client.address,
        )
        return address

    return chain_work(work, need_contract=False)


def factory_adopt(*, address: str, actor: Member | None = None) -> str:
    """Record an existing ReputationFactory (another site's, so that our contract can name
    theirs as referrer: a referrer must be in the same factory's registry). The code at
    ``address`` must be exactly the compiled factory's.

    Raises:
        InvalidInput: malformed address, or no PBTS factory there (field ``factory``).
        ChainError: see :func:`chain.services.transactions.chain_work`.
    """
    address = checksum(address, field="factory")

    def work(client: ChainClient, config: ChainConfig, token: str) -> str:
        expected = bytes.fromhex(artifact("ReputationFactory")["deployedBytecode"][2:])
        if client.code_at(address) != expected:
            raise InvalidInput(
                "No PBTS ReputationFactory at this address on this chain.", field="factory"
            )
        chain_id = client.chain_id()
        _config_record(
            config,
            actor=actor,
            action="chain_factory_adopt",
            audited={"factory_address": address, "chain_id": chain_id},
        )
        return address

    return chain_work(work, need_contract=False)


def reputation_create(
    *,
    referrer: str = "",
    attestation: bytes = b"",
    actor: Member | None = None,
    replace: bool = False,
) -> str:
    """``factory.createReputation(referrer, attestation)``: this site's Reputation contract,
    owned by the site's account; returns its address. ``referrer`` is the predecessor site's
    contract (it must be in the same factory's registry, and its owner must endorse ours before
    members can import: ``chain_approve_successor`` on that site).

    Raises:
        InvalidInput: no factory yet, or a malformed referrer (field ``referrer``).
        Conflict: a Reputation is recorded already (pass ``replace``).
        TransactionReverted: the factory refused (``UnknownReferrer``, ``AttestationTooLarge``).
        ChainError: see :func:`chain.services.transactions.chain_work`.
    """
    config = chain_config()
    if not config.factory_address:
        raise InvalidInput("Deploy the factory first (chain_deploy_factory).")
    if config.reputation_address and not replace:
        raise Conflict(f"A Reputation contract is recorded already: {config.reputation_address}.")
    referrer = checksum(referrer, field="referrer") if referrer else ""

    def work(client: ChainClient, config: ChainConfig, token: str) -> str:
        factory = client.contract("ReputationFactory", config.factory_address)
        data = client.call_data(
            factory, "createReputation", referrer or ZERO_ADDRESS, bytes(attestation)
        )
        receipt = _send_and_wait(client, config, token, to=config.factory_address, data=data)
        event = factory.events.ReputationCreated()
        created = next(
            event.process_log(log)["args"]
            for log in receipt.logs
            if log["address"].lower() == config.factory_address.lower()
        )
        address = str(created["newAddress"])
        _config_record(
            config,
            actor=actor,
            action="chain_reputation_create",
            audited={"reputation_address": address, "referrer_address": referrer},
            owner_address=client.address,
        )
        return address

    return chain_work(work, need_contract=False)


def successor_approve(
    *, successor: str, approved: bool = True, actor: Member | None = None
) -> None:
    """Endorse (or withdraw) a successor contract: its owner may then import our members'
    records, each on the member's own signed request (``approveSuccessor``).

    Raises:
        InvalidInput: a malformed address (field ``successor``).
        ChainError: see :func:`chain.services.transactions.chain_work`.
    """
    successor = checksum(successor, field="successor")

    def work(client: ChainClient, config: ChainConfig, token: str) -> None:
        contract = client.contract("Reputation", config.reputation_address)
        data = client.call_data(contract, "approveSuccessor", successor, approved)
        _send_and_wait(client, config, token, to=config.reputation_address, data=data)
        audit_record(
            actor=actor,
            action="chain_successor_approve",
            target=config,
            new={"successor": successor, "approved": approved},
        )

    chain_work(work)


__all__ = [
    "ChainError",
    "checksum",
    "factory_adopt",
    "factory_deploy",
    "reputation_create",
    "successor_approve",
]
