"""``python -m receipts.peer``: see :mod:`receipts.peer.cli`."""

import sys

from receipts.peer.cli import main

if __name__ == "__main__":
    sys.exit(main())
