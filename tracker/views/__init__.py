"""Server-rendered member pages (no JavaScript needed).

Views are thin: they validate with a form from ``tracker.forms``, call one service or selector
and render a template under ``templates/tracker/``. Modules: ``pages`` (home, site pages),
``torrents`` (browse, detail, download, upload), ``accounts`` (profiles, invites, security,
registration, login).
"""
