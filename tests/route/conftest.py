"""The route tests reuse the eval tests' fake endpoint (programmed accuracy per request)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evals"))
