"""createmember, seed and ensure_owner."""
