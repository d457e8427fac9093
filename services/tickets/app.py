"""TicketsAgent's ASGI app: the shared A2A server over the tickets store."""

from __future__ import annotations

import sqlite3

from starlette.applications import Starlette

from services.common.agent import build_agent_app, stack_version
from services.common.settings import ConfigError, ServiceSettings
from services.tickets.skills import TicketsSkills
from services.tickets.store import TicketStore

DATABASE_NAME = "tickets.db"


def build_app(settings: ServiceSettings) -> Starlette:
    path = settings.run_dir / DATABASE_NAME
    try:
        store = TicketStore(path)
    except (OSError, sqlite3.Error) as error:
        raise ConfigError(
            f"failed to open the tickets database {path}: {error}; "
            "check that JARVIS_RUN_DIR is a writable directory"
        ) from None
    return build_agent_app(settings, "tickets", TicketsSkills(store), stack_version())
