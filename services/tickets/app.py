"""TicketsAgent's ASGI app: the shared A2A server over the tickets store."""

from __future__ import annotations

from starlette.applications import Starlette

from services.common.agent import build_agent_app, stack_version
from services.common.settings import ServiceSettings
from services.tickets.skills import TicketsSkills
from services.tickets.store import TicketStore

DATABASE_NAME = "tickets.db"


def build_app(settings: ServiceSettings) -> Starlette:
    store = TicketStore(settings.run_dir / DATABASE_NAME)
    return build_agent_app(settings, "tickets", TicketsSkills(store), stack_version())
