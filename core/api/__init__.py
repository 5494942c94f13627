"""What every app's JSON API shares, one module each so that DRF can import its settings'
classes without a cycle: ``errors`` (domain errors mapped to responses in one place),
``permissions`` and ``pagination``."""
