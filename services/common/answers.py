"""The result every agent skill returns: readable text plus the records behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from services.common.tokens import Identity


@dataclass
class Answer:
    """One reply of an agent skill."""

    skill: str
    text: str
    records: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SkillInfo:
    """One skill as the agent card lists it."""

    id: str
    name: str
    description: str
    tags: list[str]
    examples: list[str]


class Skills(Protocol):
    """What an agent's domain offers: its skill list and a plain-English answerer."""

    name: str
    description: str
    catalog: list[SkillInfo]
    # True when `answer` may block: I/O (files, sockets, SQLite) or work of
    # more than about a millisecond. The agent then runs it in a worker thread
    # and otherwise on the event loop. A class without the attribute counts
    # as True.
    blocking: bool

    def answer(self, text: str, identity: Identity) -> Answer:
        """Map the request to a skill and return its answer; never raise for
        a request it cannot map (return the list of abilities instead)."""
        ...
