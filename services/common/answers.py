"""The result every agent skill returns: readable text plus the records behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    """One reply of an agent skill."""

    skill: str
    text: str
    records: list[dict[str, Any]] = field(default_factory=list)
