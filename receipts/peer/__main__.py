"""``python -m receipts.peer``: see :mod:`receipts.peer.cli`."""

import sys

from receipts.peer.cli import main

sys.exit(main())
