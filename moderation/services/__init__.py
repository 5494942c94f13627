"""Moderation writes: reports, warnings, staff notes, class locks and the class rules."""
