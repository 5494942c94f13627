"""Run the PBTS experiments and write their results (docs/experiments.md).

.venv/bin/python experiments/run_experiments.py --iterations 1000 --duration 60 [--out DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder would come first on sys.path and its modules (settings,
# tee, ...) would shadow others: the repository root replaces it.
ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from experiments.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
