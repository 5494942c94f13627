"""Chain reads for pages, the API, admin and the commands. Nothing here writes; RPC reads are
short (one attempt, a few seconds) and cached briefly, and a failure reads as "unavailable",
never as an error page. Secrets never appear: the RPC URL is shown without credentials,
path or query, and the private key only as its public address."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from eth_account import Account

from chain.client import ChainClient, ChainError
from chain.message import migration_message
from chain.models import OPEN_TX, ChainConfig, ChainMember, Migration, PushBatch, TxStatus
from chain.waiting import ledgers_waiting_for_push
from reputation.models import Ledger
from tracker.models import Member

NOT_CONFIGURED = "not configured"
RPC_CACHE_SECONDS = 15


def chain_config() -> ChainConfig:
    """The single ``ChainConfig`` row (created empty on first use)."""
    config, _ = ChainConfig.objects.get_or_create(pk=1)
    return config


def chain_is_configured() -> bool:
    """Whether the RPC URL and the private key are set (the contracts may still be missing)."""
    return bool(settings.PBTS_CHAIN_RPC_URL and settings.PBTS_CHAIN_PRIVATE_KEY)


def migration_message_for(migration: Migration) -> bytes:
    """:func:`chain.message.migration_message` of a stored request (148 bytes)."""
    return migration_message(
        chain_id=int(migration.chain_id or 0),
        contract=migration.contract_address,
        record=bytes(migration.record_id),
        member_id=migration.member_id,
        challenge=bytes(migration.challenge),
    )


def masked_rpc_url(url: str) -> str:
    """``scheme://host:port`` of ``url``, with any user, password, path or query (where
    providers put API tokens) replaced by ``…``; "not configured" when empty."""
    if not url:
        return NOT_CONFIGURED
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if parts.port:
        host = f"{host}:{parts.port}"
    hidden = "…" if (parts.username or parts.password) else ""
    tail = "/…" if (parts.path.strip("/") or parts.query) else ""
    return f"{parts.scheme}://{hidden + '@' if hidden else ''}{host}{tail}"


def account_address() -> str:
    """The site account's public address, or "" when no valid key is set."""
    try:
        return str(Account.from_key(settings.PBTS_CHAIN_PRIVATE_KEY).address)
    except Exception:
        return ""


def _read_client() -> ChainClient:
    return ChainClient(
        settings.PBTS_CHAIN_RPC_URL,
        settings.PBTS_CHAIN_PRIVATE_KEY,
        request_timeout=3.0,
        retries=1,
    )


def chain_overview(*, live: bool = False, staff: bool = False) -> dict[str, Any]:
    """This site's chain set-up and health.

    Args:
        live: also ask the endpoint for its chain id and the account's balance (wei).
        staff: include the RPC URL (masked) and the status detail.
    """
    config = ChainConfig.objects.filter(pk=1).first() or ChainConfig(pk=1)
    configured = chain_is_configured()
    last = PushBatch.objects.filter(tx_status=TxStatus.CONFIRMED).order_by("-finished_at").first()
    data: dict[str, Any] = {
        "configured": configured,
        "status": config.status if configured else NOT_CONFIGURED,
        "checked_at": config.checked_at.isoformat() if config.checked_at else None,
        "chain_id": config.chain_id,
        "account": account_address() or NOT_CONFIGURED,
        "factory": config.factory_address or None,
        "reputation": config.reputation_address or None,
        "referrer": config.referrer_address or None,
        "open_transactions": PushBatch.objects.filter(tx_status__in=OPEN_TX).count()
        + Migration.objects.filter(tx_status__in=OPEN_TX).count(),
        "members_waiting": ledgers_waiting_for_push().count(),
        "last_push": (
            {
                "tx_hash": last.tx_hash_hex,
                "block": last.block_number,
                "members": last.size,
                "gas_used": last.gas_used,
                "at": last.finished_at.isoformat() if last.finished_at else None,
            }
            if last
            else None
        ),
    }
    if staff:
        data["rpc_url"] = masked_rpc_url(settings.PBTS_CHAIN_RPC_URL)
        data["status_detail"] = config.status_detail if configured else ""
    if live and configured:
        data["rpc"] = _live(config)
    return data


def _live(config: ChainConfig) -> dict[str, Any]:
    try:
        client = _read_client()
        chain_id = client.chain_id()
        return {
            "reachable": True,
            "chain_id": chain_id,
            "chain_id_matches": config.chain_id in (None, chain_id),
            "balance_wei": client.balance(),
        }
    except ChainError as exc:
        return {"reachable": False, "error": exc.message}


def on_chain_record(record: bytes, *, fresh: bool = False) -> dict[str, Any] | None:
    """The contract's view of ``record`` (``userInfo``), cached for a few seconds (``fresh``:
    read the contract again, e.g. right after a push); None when no chain or contract is set;
    ``{"error": ...}`` when the endpoint cannot be read."""
    config = ChainConfig.objects.filter(pk=1).first()
    if not chain_is_configured() or config is None or not config.reputation_address:
        return None
    key = f"chain:record:{config.reputation_address}:{record.hex()}"
    found = None if fresh else cache.get(key)
    if found is not None:
        return found
    try:
        client = _read_client()
        contract = client.contract("Reputation", config.reputation_address)
        exists, up, down, _created_at, migrated_from = client.call(
            contract.functions.userInfo(record)
        )
    except ChainError as exc:
        return {"error": f"unavailable ({exc.status})"}
    found = {
        "exists": bool(exists),
        "uploaded": int(up),
        "downloaded": int(down),
        "migrated_from": migrated_from if int(migrated_from, 16) else None,
    }
    cache.set(key, found, RPC_CACHE_SECONDS)
    return found


def member_chain_view(
    member: Member, *, live: bool = True, private: bool = False, fresh: bool = False
) -> dict:
    """A member's reputation as this site publishes it: the site's verified totals (bytes),
    what was imported from a predecessor, what the contract holds (``live``; ``fresh``: not
    from the short cache), and (``private``: the member or staff) whether a push is waiting or
    blocked and their latest migration."""
    ledger = Ledger.objects.filter(member=member).first()
    record = ChainMember.objects.filter(member=member).first()
    data: dict[str, Any] = {
        "username": member.username,
        "record_id": f"0x{bytes(record.record_id).hex()}" if record else None,
        "verified_uploaded": ledger.verified_uploaded if ledger else 0,
        "verified_downloaded": ledger.verified_downloaded if ledger else 0,
        "imported": (
            {
                "uploaded": ledger.imported_uploaded if ledger else 0,
                "downloaded": ledger.imported_downloaded if ledger else 0,
                "from": record.imported_from,
                "at": record.imported_at.isoformat() if record.imported_at else None,
            }
            if record and record.imported_at
            else None
        ),
        "published": (
            {
                "uploaded": record.pushed_uploaded,
                "downloaded": record.pushed_downloaded,
                "at": record.pushed_at.isoformat() if record.pushed_at else None,
            }
            if record and record.pushed_at
            else None
        ),
    }
    if live:
        data["on_chain"] = on_chain_record(bytes(record.record_id), fresh=fresh) if record else None
    if private:
        data["waiting_for_push"] = ledgers_waiting_for_push(member_ids=[member.pk]).exists()
        data["blocked"] = bool(record and record.is_blocked)
        latest = member.chain_migrations.order_by("-created_at").first()
        data["migration"] = migration_view(latest) if latest else None
    return data


def migration_view(migration: Migration) -> dict[str, Any]:
    """A migration request as JSON: its state and, while it waits for a signature, the
    message to sign (hex)."""
    data: dict[str, Any] = {
        "id": migration.pk,
        "status": migration.status,
        "record_id": f"0x{bytes(migration.record_id).hex()}",
        "contract": migration.contract_address,
        "chain_id": migration.chain_id,
        "expires_at": migration.expires_at.isoformat(),
        "tx_hash": migration.tx_hash_hex or None,
        "block": migration.block_number,
        "error": migration.error or None,
        "source": migration.source_address or None,
        "imported_uploaded": migration.imported_uploaded,
        "imported_downloaded": migration.imported_downloaded,
    }
    if migration.status == "challenged":
        data["message"] = migration_message_for(migration).hex()
    return data


# --- the original PBTS /contract shapes (docs/chain.md, "Compatibility with the original
# /contract API") -------------------------------------------------------------------------

ZERO_ADDRESS = "0x" + "00" * 20
CHAIN_NOT_CONFIGURED_MESSAGE = (
    "Chain not configured on this site: the operator sets PBTS_CHAIN_RPC_URL and "
    "PBTS_CHAIN_PRIVATE_KEY (docs/chain.md)."
)
NO_CONTRACT_MESSAGE = "No Reputation contract on this site yet (staff: POST /contract/init)."
LEDGER_SIZES_NOTE = "uploadSize and downloadSize are the site's verified ledger totals."


def original_ratio(uploaded: int, downloaded: int) -> float | None:
    """``uploadSize / downloadSize`` as the original computed it (a float); None when nothing
    was downloaded. The original answered ``float('inf')`` there, which its Flask server wrote
    as the non-JSON token ``Infinity`` and its Rust port as ``null``: we answer ``null``."""
    if downloaded <= 0:
        return None
    return uploaded / downloaded


def contract_not_ready_reason() -> str | None:
    """Why the Reputation contract cannot be read (a message for the caller), or None when the
    chain is configured and a contract is recorded."""
    if not chain_is_configured():
        return CHAIN_NOT_CONFIGURED_MESSAGE
    config = ChainConfig.objects.filter(pk=1).first()
    if config is None or not config.reputation_address:
        return NO_CONTRACT_MESSAGE
    return None


def current_reputation_address() -> str | None:
    """This site's Reputation contract address, or None when the chain is not configured or
    no contract is recorded."""
    if not chain_is_configured():
        return None
    config = ChainConfig.objects.filter(pk=1).first()
    return (config.reputation_address or None) if config else None


def contract_status_view(*, staff: bool = False) -> dict[str, Any]:
    """:func:`chain_overview` plus the original's keys: ``success`` (configured and a contract
    recorded), ``connected`` (configured and the last contact with the endpoint did not fail),
    ``account_address``, ``factory_address``, ``reputation_address``, ``referrer_address``
    (the zero address when the contract has no referrer, as the original's init answered;
    None without a contract) and, when ``success`` is false, ``error``. The RPC URL, which the
    original showed to anyone, stays staff-only and masked (``staff``)."""
    data = chain_overview(staff=staff)
    reason = contract_not_ready_reason()
    configured = bool(data["configured"])
    data["success"] = reason is None
    data["connected"] = configured and data["status"] not in (
        NOT_CONFIGURED,
        "not_configured",
        "rpc_down",
    )
    data["account_address"] = (
        data["account"] if configured and data["account"] != NOT_CONFIGURED else None
    )
    data["factory_address"] = data["factory"]
    data["reputation_address"] = data["reputation"]
    data["referrer_address"] = (data["referrer"] or ZERO_ADDRESS) if data["reputation"] else None
    if reason is not None:
        data["error"] = reason
    return data


def contract_user_view(member: Member, *, private: bool = False, fresh: bool = False) -> dict:
    """:func:`member_chain_view` plus the original's keys: ``success``, ``user`` (``username``,
    ``downloadSize``, ``uploadSize`` in bytes, ``ratio`` by :func:`original_ratio`),
    ``sizes_from``, ``contract_address`` (the original's key) and ``reputation_address``.

    The sizes are what the contract holds for the member (0 and 0 while they are not on it,
    as the original's contract answered for an unknown user): ``sizes_from`` is "contract"
    and ``success`` true. When the contract cannot be read (chain not configured, no contract,
    endpoint down) they are the site's ledger totals (imported + verified, what the next push
    writes): ``sizes_from`` is "ledger", ``success`` false and ``error`` says why."""
    data = member_chain_view(member, private=private, fresh=fresh)
    reason = contract_not_ready_reason()
    on_chain = data.get("on_chain")
    if reason is None and on_chain is not None and "error" in on_chain:
        reason = f"The contract could not be read: {on_chain['error']}."
    if reason is None:
        uploaded = int(on_chain["uploaded"]) if on_chain else 0
        downloaded = int(on_chain["downloaded"]) if on_chain else 0
        source = "contract"
    else:
        ledger = Ledger.objects.filter(member=member).first()
        uploaded = ledger.imported_uploaded + ledger.verified_uploaded if ledger else 0
        downloaded = ledger.imported_downloaded + ledger.verified_downloaded if ledger else 0
        source = "ledger"
    address = current_reputation_address()
    data["success"] = reason is None
    data["user"] = {
        "username": member.username,
        "downloadSize": downloaded,
        "uploadSize": uploaded,
        "ratio": original_ratio(uploaded, downloaded),
    }
    data["sizes_from"] = source
    data["contract_address"] = address
    data["reputation_address"] = address
    if reason is not None:
        data["error"] = f"{reason} {LEDGER_SIZES_NOTE}"
    return data
