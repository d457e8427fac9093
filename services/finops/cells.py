"""Read single FOCUS cells: money, timestamps, labels and the Tags JSON object.

`NULL` and empty cells become None (money, timestamps), "" (text) or `MISSING`
(labels). A cell that is present but unreadable raises RowError.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

# Label for a missing provider, service, region, account or currency.
MISSING = "(none)"
NULL_MARKERS = frozenset({"", "null"})


class RowError(ValueError):
    """One cell cannot be read; the loader adds the source and line."""


def read_tags(value: Any) -> tuple[dict[str, str], bool]:
    """Parse a FOCUS Tags cell; return the tags and whether the cell was valid.

    Keys lose surrounding spaces (exports contain both `org` and ` org`) and the
    first of two keys that then collide wins. Non-string values are kept as JSON.
    """
    if value is None:
        return {}, True
    if isinstance(value, str):
        if value.strip().lower() in NULL_MARKERS:
            return {}, True
        try:
            value = json.loads(value)
        except ValueError:
            return {}, False
    elif isinstance(value, list) and all(
        isinstance(pair, tuple) and len(pair) == 2 for pair in value
    ):
        # pyarrow returns a Parquet map column as a list of (key, value) tuples.
        value = dict(value)
    if not isinstance(value, dict):
        return {}, False
    tags: dict[str, str] = {}
    for key, item in value.items():
        if item is None:
            text = ""
        elif isinstance(item, str):
            text = item
        else:
            text = json.dumps(item)
        tags.setdefault(str(key).strip(), text)
    return tags, True


def read_text(value: Any) -> str:
    """Return the stripped text of a cell, or "" for a NULL or empty cell."""
    if value is None:
        return ""
    text = str(value).strip()
    return "" if text.lower() in NULL_MARKERS else text


def read_label(value: Any) -> str:
    """Return the stripped text of a cell, or MISSING for a NULL or empty cell."""
    return read_text(value) or MISSING


def read_money(record: Mapping[str, Any], column: str) -> Decimal | None:
    """Return a cost cell as Decimal from text, int, float or Decimal values."""
    value = record.get(column)
    if value is None:
        return None
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, bool):
        raise RowError(f"{column} {value!r} is not a number")
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        # repr gives the shortest text that reads back as the same float.
        amount = Decimal(repr(value))
    else:
        text = str(value).strip()
        if text.lower() in NULL_MARKERS:
            return None
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise RowError(f"{column} {text!r} is not a number") from None
    if not amount.is_finite():
        raise RowError(f"{column} {value!r} is not a finite number")
    return amount


def read_timestamp(record: Mapping[str, Any], column: str) -> datetime | None:
    """Return an ISO 8601 cell, or a datetime or date value, as an aware UTC time."""
    value = record.get(column)
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if text.lower() in NULL_MARKERS:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise RowError(
                f"{column} {text!r} is not an ISO 8601 date and time "
                "such as 2024-09-01T00:00:00Z"
            ) from None
    # FOCUS timestamps are UTC; a value without an offset is taken as UTC.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
