"""Commands that talk to the agents: token, invoke and agents."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the token sub-commands, invoke and agents to the CLI."""
