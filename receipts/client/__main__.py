"""``python -m receipts.client``: see :mod:`receipts.client.cli`."""

from receipts.client.cli import main

raise SystemExit(main())
