"""FinOpsAgent's ASGI app: the shared A2A server over the FOCUS cost data."""

from __future__ import annotations

from starlette.applications import Starlette

from services.common.agent import build_agent_app, stack_version
from services.common.settings import ServiceSettings
from services.finops.skills import FinOpsSkills


def build_app(settings: ServiceSettings) -> Starlette:
    return build_agent_app(settings, "finops", FinOpsSkills(settings), stack_version())
