"""Gunicorn settings, read from the working directory (the repository root, and /app in the
Docker image): gunicorn's own error and access logs mask passkeys, API tokens, invite codes and
set-password links like every Django log (``core.logging``). Django's logs inside the workers
are masked by ``settings.LOGGING``."""

from __future__ import annotations

import sys
from pathlib import Path

from gunicorn import glogging

sys.path.insert(0, str(Path(__file__).resolve().parent))

from core.logging import SecretMaskFilter


class MaskingLogger(glogging.Logger):
    """Gunicorn's logger with :class:`~core.logging.SecretMaskFilter` on ``gunicorn.error`` and
    ``gunicorn.access`` (the access log's request line and referrer carry the URLs)."""

    def setup(self, cfg):  # type: ignore[no-untyped-def]
        """Gunicorn's set-up (also run on a reload), then the filter once on each logger."""
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, SecretMaskFilter) for f in log.filters):
                log.addFilter(SecretMaskFilter())


logger_class = MaskingLogger
