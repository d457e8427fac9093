"""Run TicketsAgent: `python -m services.tickets`."""

from __future__ import annotations

from services.common.server import serve
from services.tickets.app import build_app

if __name__ == "__main__":
    serve("tickets", build_app)
