"""The PBTS peer: a BitTorrent client for members that signs and collects receipts.

``python -m receipts.peer seed|download|report ...`` (:mod:`receipts.peer.cli`). Plain Python
(asyncio, the standard library, fastbencode and :mod:`receipts`); nothing here imports Django.

Modules, from the bytes up:

- :mod:`~receipts.peer.metainfo`: .torrent files (BEP 3, BEP 12, BEP 27, BEP 47);
- :mod:`~receipts.peer.storage`: pieces on disk across files, SHA-1 checks, recheck;
- :mod:`~receipts.peer.wire`: BEP 3 and BEP 10 message framing (pure functions);
- :mod:`~receipts.peer.extension`: the ``pbts_receipt`` BEP 10 extension (docs/bep10.md);
- :mod:`~receipts.peer.tracker_client`: HTTP and UDP (BEP 15, BEP 41) announces;
- :mod:`~receipts.peer.connection`, :mod:`~receipts.peer.picker`,
  :mod:`~receipts.peer.session`: connections, choking, piece picking, endgame;
- :mod:`~receipts.peer.receipts_box`, :mod:`~receipts.peer.reporter`: the uploader's receipts
  on disk and their reports to the site;
- :mod:`~receipts.peer.journal`: receipts not yet acknowledged and pieces sent, kept across a
  crash.
"""

from __future__ import annotations

CLIENT_NAME = "PBTS peer 0.1"
PEER_ID_PREFIX = b"-PB0100-"
"""Azureus-style peer_id prefix (BEP 20); the site's client whitelist must allow ``-PB0``."""
