"""The tracker app. ``PBTS_SPEEDUPS=1`` makes ``tracker.trackerd`` the compiled build
(``make speedups``; see ``tracker/speedups.py``). No Django import here."""

from tracker.speedups import use_build

COMPILED = use_build(__name__, __path__)
