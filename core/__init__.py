"""The pieces every PBTS app shares, so that apps depend on each other only for their data
(docs/architecture.md): domain errors (``core.errors``), the append-only audit log
(``core.models``, ``core.audit``), the admin site and its helpers (``core.admin_site``,
``core.admin``), DRF permissions, pagination and the error handler (``core.api``), page helpers
(``core.views``), bulk SQL (``core.bulksql``), and the site's guards: login rules and lockout
(``core.auth``), the banned-session middleware (``core.middleware``), the client address
(``core.http``), a cache rate limit (``core.ratelimit``) and the log filter that masks secrets
(``core.logging``)."""
