"""A second PBTS site for the portable-reputation test, run as its own process with its own
database (``DATABASE_URL``) and its own account (``PBTS_CHAIN_PRIVATE_KEY``).

    python -m chain.tests.othersite setup --public-key HEX --pop HEX --uploaded N --downloaded N
    python -m chain.tests.othersite approve ADDRESS

``setup`` deploys a factory, creates a root Reputation, adds member "alice" with that BLS key
and those verified totals (bytes) and pushes her; it prints the addresses as JSON. ``approve``
endorses a successor contract.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pbts_site.settings_test")
    import django

    django.setup()

    from chain.services.deploy import factory_deploy, reputation_create, successor_approve
    from chain.services.push import members_push
    from receipts.models import BLSKey
    from reputation.models import Ledger
    from tracker.services.members import member_create

    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("setup")
    setup.add_argument("--public-key", required=True)
    setup.add_argument("--pop", required=True)
    setup.add_argument("--uploaded", type=int, required=True)
    setup.add_argument("--downloaded", type=int, required=True)
    approve = commands.add_parser("approve")
    approve.add_argument("address")
    args = parser.parse_args(argv)

    if args.command == "setup":
        factory = factory_deploy()
        reputation = reputation_create()
        alice = member_create(
            username="alice", email="alice@a.example", password="correct horse battery 42"
        )
        BLSKey.objects.create(
            member=alice, public_key=bytes.fromhex(args.public_key), pop=bytes.fromhex(args.pop)
        )
        Ledger.objects.filter(member=alice).update(
            verified_uploaded=args.uploaded,
            verified_downloaded=args.downloaded,
        )
        result = members_push()
        print(json.dumps({"factory": factory, "reputation": reputation, "pushed": result.pushed}))
    else:
        successor_approve(successor=args.address)
        print(json.dumps({"approved": args.address}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
