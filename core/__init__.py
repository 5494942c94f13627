"""Pieces every PBTS app shares (no models of its own): bulk SQL helpers, and more as the
apps are split (docs/architecture.md)."""
