"""Gas per member of the Reputation contract's writes, measured on anvil.

    .venv/bin/python bench/chain_gas.py [--json bench/results/chain_gas.json]

Starts anvil (npm ``@foundry-rs/anvil``) on a free 127.0.0.1 port, deploys the compiled
contracts (contracts/artifacts) and sends real, locally signed transactions:

- ``updateUsers`` batches of 1, 10 and 100 members, first new members (a record and a meta
  slot are created) then the same members again with larger totals (one slot rewritten);
- the original's way for comparison: one ``updateUser`` transaction per member (and
  ``addUser`` for a new one);
- ``migrateUserData`` over one and two referrer hops.

Figures are gas from the receipts (``gasUsed``), including the 21,000 gas every transaction
pays; "per member" divides a transaction's gas by its members. Target (issue 5): at most
15,000 gas per existing member in batches of 100. No Django needed.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from web3.contract.contract import Contract

from chain.client import ChainClient, Receipt
from chain.devnet import Anvil

ZERO = "0x" + "00" * 20
GIB = 1024**3
TX_BASE = 21_000


def send(client: ChainClient, contract: Contract, function: str, *args: Any) -> Receipt:
    """Sign, send and wait; raises on a revert."""
    signed = client.prepare(
        to=contract.address,
        data=client.call_data(contract, function, *args),
        nonce=client.nonce(),
        chain_id=client.chain_id(),
    )
    client.send_raw(signed.raw)
    receipt = client.wait_receipt(signed.tx_hash, timeout=30)
    if not receipt.ok:
        raise RuntimeError(f"{function} reverted")
    return receipt


def deploy(client: ChainClient, name: str, *args: Any) -> tuple[Contract, int]:
    contract, receipt = client.deploy(name, *args)
    return contract, receipt.gas_used


def ids(n: int) -> list[bytes]:
    return [secrets.token_bytes(32) for _ in range(n)]


def measure(client: ChainClient) -> dict:
    rows: list[dict] = []
    rep, deploy_gas = deploy(client, "Reputation", client.address, ZERO)
    factory, factory_gas = deploy(client, "ReputationFactory")
    for n in (1, 10, 100):
        members = ids(n)
        ups = [40 * GIB + i for i in range(n)]
        downs = [10 * GIB + i for i in range(n)]
        new = send(client, rep, "updateUsers", members, ups, downs).gas_used
        more = send(
            client, rep, "updateUsers", members, [u + GIB for u in ups], [d + GIB for d in downs]
        ).gas_used
        rows.append(
            {"case": f"updateUsers, batch of {n}", "members": n, "new": new, "existing": more}
        )
    # The original's way: one transaction per member.
    one = ids(1)[0]
    add = send(client, rep, "addUser", one, 40 * GIB, 10 * GIB).gas_used
    update = send(client, rep, "updateUser", one, 41 * GIB, 11 * GIB).gas_used
    rows.append(
        {"case": "addUser / updateUser, 1 per tx", "members": 1, "new": add, "existing": update}
    )

    # Migration over one and two hops (factory-made lineage, endorsed).
    def created(referrer: str) -> Contract:
        receipt = send(client, factory, "createReputation", referrer, b"")
        event = factory.events.ReputationCreated().process_log(receipt.logs[-1])
        return client.contract("Reputation", event["args"]["newAddress"])

    a = created(ZERO)
    b = created(a.address)
    c = created(b.address)
    send(client, a, "approveSuccessor", b.address, True)
    send(client, b, "approveSuccessor", c.address, True)
    m1, m2 = ids(2)
    send(client, a, "updateUsers", [m1, m2], [GIB, GIB], [GIB, GIB])
    one_hop = send(client, b, "migrateUserData", m1).gas_used
    two_hops = send(client, c, "migrateUserData", m2).gas_used
    return {
        "rows": rows,
        "migrate_one_hop": one_hop,
        "migrate_two_hops": two_hops,
        "deploy_reputation": deploy_gas,
        "deploy_factory": factory_gas,
    }


def table(result: dict) -> str:
    lines = [
        f"{'case':34} {'members':>7} {'new/member':>11} {'existing/member':>16} "
        f"{'existing w/o base':>18}",
    ]
    for row in result["rows"]:
        n = row["members"]
        lines.append(
            f"{row['case']:34} {n:>7} {row['new'] / n:>11,.0f} {row['existing'] / n:>16,.0f} "
            f"{(row['existing'] - TX_BASE) / n:>18,.0f}"
        )
    lines.append(
        f"{'original updateUser (docs/origin.md)':34} {1:>7} {'-':>11} {63_000:>16,} {42_000:>18,}"
    )
    lines.append(
        f"migrateUserData, 1 hop: {result['migrate_one_hop']:,} gas; "
        f"2 hops: {result['migrate_two_hops']:,} gas"
    )
    lines.append(
        f"deploy: Reputation {result['deploy_reputation']:,} gas, "
        f"ReputationFactory {result['deploy_factory']:,} gas"
    )
    batch100 = next(r for r in result["rows"] if r["members"] == 100)
    per = batch100["existing"] / 100
    verdict = "meets" if per <= 15_000 else "MISSES"
    lines.append(f"existing member in a batch of 100: {per:,.0f} gas ({verdict} the 15,000 target)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    with Anvil() as node:
        # anvil's public dev account #0, as anvil itself wrote it: a throwaway local chain.
        client = ChainClient(node.url, node.dev_private_key(0))
        result = measure(client)
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    batch100 = next(r for r in result["rows"] if r["members"] == 100)
    return 0 if batch100["existing"] / 100 <= 15_000 else 1


if __name__ == "__main__":
    raise SystemExit(main())
