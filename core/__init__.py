"""The pieces every PBTS app shares, so that apps depend on each other only for their data
(docs/architecture.md): domain errors (``core.errors``), the append-only audit log
(``core.models``, ``core.audit``), admin helpers (``core.admin``), DRF permissions, pagination
and the error handler (``core.api``), page helpers (``core.views``) and bulk SQL
(``core.bulksql``)."""
