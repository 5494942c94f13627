"""Reads of the run-time configuration (``tracker.models.RuntimeConfig``, docs/config.md).

:func:`runtime_values` gives the values in force (the row's, or the settings' where the row
has none); :func:`cached_version` and :func:`publish_version` keep the row's ``version`` in the
shared cache, so a tracker process learns of a change with one cache read instead of a query.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from tracker.models import RuntimeConfig

VERSION_KEY = "tracker:runtime-config:version"
#: How long (seconds) the shared version is trusted before a process reads the row again, in
#: case the key was lost; the service sets the key on every change.
VERSION_CACHE_SECONDS = 300
#: The fields staff may change (``POST /config``) and their bounds.
MIN_RATIO_RANGE = (0.0, 10.0)
MAX_PEERS_RANGE = (1, 200)


@dataclass(frozen=True, slots=True)
class RuntimeValues:
    """The run-time values in force: ``min_ratio`` (uploaded/downloaded), ``max_peers`` (peers
    per reply), ``ratio_grace_bytes`` (bytes downloaded before the ratio rule applies),
    ``sitewide_freeleech``; ``version`` is the row's (0: no row, the settings apply)."""

    min_ratio: float
    max_peers: int
    ratio_grace_bytes: int
    sitewide_freeleech: bool
    version: int

    def as_dict(self) -> dict[str, float | int | bool]:
        """The four changeable values, for the API and the audit log."""
        return {
            "min_ratio": self.min_ratio,
            "max_peers": self.max_peers,
            "ratio_grace_bytes": self.ratio_grace_bytes,
            "sitewide_freeleech": self.sitewide_freeleech,
        }


def values_of(row: RuntimeConfig | None) -> RuntimeValues:
    """The values in force for ``row`` (``None``: no row): its fields, the settings
    ``MIN_RATIO``, ``MAX_PEERS`` and ``PBTS_RATIO_GRACE_BYTES`` where a field is empty."""
    if row is None:
        return RuntimeValues(
            min_ratio=settings.MIN_RATIO,
            max_peers=settings.MAX_PEERS,
            ratio_grace_bytes=settings.PBTS_RATIO_GRACE_BYTES,
            sitewide_freeleech=False,
            version=0,
        )
    return RuntimeValues(
        min_ratio=settings.MIN_RATIO if row.min_ratio is None else row.min_ratio,
        max_peers=settings.MAX_PEERS if row.max_peers is None else row.max_peers,
        ratio_grace_bytes=(
            settings.PBTS_RATIO_GRACE_BYTES
            if row.ratio_grace_bytes is None
            else row.ratio_grace_bytes
        ),
        sitewide_freeleech=row.sitewide_freeleech,
        version=row.version,
    )


def runtime_values() -> RuntimeValues:
    """The values in force, read from the database (one query)."""
    return values_of(RuntimeConfig.objects.filter(pk=1).first())


def ratio_thresholds() -> tuple[float, int]:
    """``(min_ratio, ratio_grace_bytes)`` in force (one query), for
    ``reputation.selectors.below_min_ratio``."""
    values = runtime_values()
    return values.min_ratio, values.ratio_grace_bytes


def cached_version() -> int | None:
    """The row's version as published in the shared cache, or ``None`` (not published, or
    the cache cannot be read: the caller reads the row)."""
    try:
        value = cache.get(VERSION_KEY)
    except Exception:  # a cache outage only costs a query
        return None
    return value if isinstance(value, int) else None


def publish_version(version: int, *, replace: bool) -> None:
    """Put ``version`` in the shared cache: ``replace`` after a change (the service); without
    it only when no version is there (a reader that has just read the row must not overwrite
    a newer version published meanwhile). Errors are ignored (readers fall back to the row)."""
    timeout = VERSION_CACHE_SECONDS if settings.REDIS_URL else settings.PBTS_CONFIG_SECONDS
    try:
        if replace:
            cache.set(VERSION_KEY, version, timeout=timeout)
        else:
            cache.add(VERSION_KEY, version, timeout=timeout)
    except Exception:  # readers fall back to the row
        pass
