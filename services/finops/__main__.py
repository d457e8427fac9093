"""Run FinOpsAgent: `python -m services.finops`."""

from __future__ import annotations

from services.common.server import serve
from services.finops.app import build_app

if __name__ == "__main__":
    serve("finops", build_app)
