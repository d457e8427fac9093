"""Summaries of repeated timings, target checks and Markdown tables."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Spread:
    """Median, minimum and maximum of repeated measurements."""

    median: float
    min: float
    max: float
    runs: int

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        if not values:
            raise ValueError("no measurements to summarise")
        return cls(statistics.median(values), min(values), max(values), len(values))


@dataclass
class Check:
    """One target: the measured value, its limit and whether it was met."""

    name: str
    measured: float
    limit: float
    unit: str
    met: bool
    note: str = ""

    @classmethod
    def at_most(
        cls, name: str, measured: float, limit: float, unit: str, note: str = ""
    ) -> Check:
        return cls(name, measured, limit, unit, measured <= limit, note)

    @classmethod
    def at_least(
        cls, name: str, measured: float, limit: float, unit: str, note: str = ""
    ) -> Check:
        return cls(name, measured, limit, unit, measured >= limit, note)

    def verdict(self) -> str:
        return "met" if self.met else "MISSED"


def to_json(value: Any) -> Any:
    """Convert dataclasses (nested in lists and dicts) to plain JSON values."""
    if hasattr(value, "__dataclass_fields__"):
        return {key: to_json(item) for key, item in asdict(value).items()}
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_json(item) for item in value]
    return value


def table(header: list[str], rows: list[list[str]]) -> str:
    """Render a Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def seconds_row(label: str, spread: Spread, scale: float = 1.0) -> list[str]:
    """Format a spread of seconds as `label, median, min, max, runs`."""
    return [
        label,
        f"{spread.median * scale:.3f}",
        f"{spread.min * scale:.3f}",
        f"{spread.max * scale:.3f}",
        str(spread.runs),
    ]


def checks_table(checks: list[Check]) -> str:
    rows = [
        [
            check.name,
            f"{check.measured:.3f} {check.unit}",
            f"{check.limit:.3f} {check.unit}",
            check.verdict(),
            check.note,
        ]
        for check in checks
    ]
    return table(["target", "measured", "limit", "result", "note"], rows)
