"""Management commands of the tracker app."""
