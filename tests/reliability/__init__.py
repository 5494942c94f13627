"""The reliability suite (issue 14): API fuzzing against the schema, worker kills, service
restarts and a short soak. The full runs are ``bench/reliability.py``; figures in
``docs/reliability.md``."""
