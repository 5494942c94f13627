"""The experiments harness (issue 16): latency of key generation, attestation, registration
and receipt signatures, and throughput scaling, written as CSV, LaTeX, plots and a report.

Run ``.venv/bin/python experiments/run_experiments.py --iterations N --duration S``; see
docs/experiments.md. A developer tool: nothing here is imported by the site.
"""
