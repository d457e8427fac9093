"""Run the registry service: `python -m services.registry`."""

from __future__ import annotations

from services.common.server import serve
from services.registry.app import build_app

if __name__ == "__main__":
    serve("registry", build_app)
