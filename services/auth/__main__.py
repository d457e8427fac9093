"""Run the auth service: `python -m services.auth`."""

from __future__ import annotations

from services.auth.app import build_app
from services.common.server import serve

if __name__ == "__main__":
    serve("auth", build_app)
