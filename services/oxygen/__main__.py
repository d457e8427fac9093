"""Run OxygenAgent: `python -m services.oxygen`."""

from __future__ import annotations

from services.common.server import serve
from services.oxygen.app import build_app

if __name__ == "__main__":
    serve("oxygen", build_app)
