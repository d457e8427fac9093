"""Render cost groups as Markdown text and as answer records.

Money in records is a string: `<field>` is the exact Decimal sum rounded to
cents (halves away from zero) and `<field>_exact` the unrounded sum, both in
plain notation, and both None when every row of the group has a NULL cost.
Text amounts carry two decimals, a thousands separator and the currency code,
and every total is per currency.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from services.finops.costs import CostGroup, currency_totals, round_cents
from services.finops.data import MEASURES

# Enough lines for a chat reply; the records of an answer carry every group.
MAX_TABLE_LINES = 15
MEASURE_LABELS = {
    "BilledCost": "Billed cost",
    "EffectiveCost": "Effective cost",
    "ListCost": "List cost",
}


def format_money(amount: Decimal, currency: str) -> str:
    """Format as `1,234.56 USD`."""
    return f"{round_cents(amount):,.2f} {currency}"


def money_fields(measure: str, amount: Decimal | None) -> dict[str, str | None]:
    """Return the record fields of one amount, such as `billed_cost`."""
    name = MEASURES[measure]
    if amount is None:
        return {name: None, f"{name}_exact": None}
    return {name: f"{round_cents(amount):f}", f"{name}_exact": f"{amount:f}"}


def group_amount(group: CostGroup) -> str:
    """Format the amount of a group, or `no value` when every cost was NULL."""
    if not group.has_amount:
        return "no value"
    return format_money(group.amount, group.currency)


def group_record(
    group: CostGroup, measure: str, labels: Sequence[str]
) -> dict[str, Any]:
    """Return one record: the key under `labels`, currency, money and row count."""
    record: dict[str, Any] = dict(zip(labels, group.key, strict=True))
    record["currency"] = group.currency
    record.update(money_fields(measure, group.amount if group.has_amount else None))
    record["rows"] = group.rows
    return record


def markdown_table(headers: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """Render a Markdown table; lines past MAX_TABLE_LINES become a count."""
    shown = lines[:MAX_TABLE_LINES]
    alignment = ["---"] * (len(headers) - 2) + ["---:", "---:"]
    text = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join(alignment) + " |",
    ]
    text += ["| " + " | ".join(cells) + " |" for cells in shown]
    if len(lines) > len(shown):
        text.append(f"\n…and {len(lines) - len(shown)} more lines in the records.")
    return "\n".join(text)


def totals_line(groups: Iterable[CostGroup], measure: str) -> str:
    """Return the bold total line, one amount per currency."""
    totals = currency_totals(groups)
    label = "Total" if len(totals) <= 1 else "Totals per currency"
    amounts = "; ".join(format_money(value, code) for code, value in totals.items())
    return f"**{label} ({MEASURE_LABELS[measure].lower()}): {amounts or 'none'}**"


def notes(groups: Sequence[CostGroup], measure: str) -> list[str]:
    """Return remarks on several currencies and on NULL cost cells."""
    remarks = []
    currencies = sorted({group.currency for group in groups})
    if len(currencies) > 1:
        remarks.append(
            f"Amounts are in {len(currencies)} currencies ({', '.join(currencies)}). "
            "Each total is per currency, because currencies are never converted "
            "or added together."
        )
    null_rows = sum(group.null_rows for group in groups)
    if null_rows:
        remarks.append(
            f"{null_rows} rows have no {measure} value (NULL or empty) "
            "and are left out of the sums."
        )
    return remarks
