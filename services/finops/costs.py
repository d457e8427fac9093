"""Sum cost rows per group and per currency, exactly, with Decimal.

Two currencies are never added together: every group and every total carries
its BillingCurrency, and a group key always includes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from services.finops.data import CostRow

CENT = Decimal("0.01")


@dataclass
class CostGroup:
    """The sum of one cost column over the rows sharing a key and a currency."""

    key: tuple[str, ...]
    currency: str
    amount: Decimal
    rows: int
    """Rows in the group, including rows whose cost cell is NULL."""
    null_rows: int
    """Rows left out of `amount` because their cost cell is NULL."""

    @property
    def has_amount(self) -> bool:
        """Whether at least one row had a cost, so `amount` is not just zero."""
        return self.rows > self.null_rows


def select_rows(
    rows: Iterable[CostRow],
    provider: str | None = None,
    month: str | None = None,
) -> list[CostRow]:
    """Keep the rows of one provider (case-insensitive) and one `YYYY-MM` month."""
    wanted_provider = provider.casefold() if provider else None
    selected = []
    for row in rows:
        if wanted_provider and row.provider.casefold() != wanted_provider:
            continue
        if month and row.month != month:
            continue
        selected.append(row)
    return selected


def group_costs(
    rows: Iterable[CostRow],
    measure: str,
    key: Callable[[CostRow], tuple[str, ...]],
) -> list[CostGroup]:
    """Sum `measure` per key and currency, largest amount first in each currency."""
    groups: dict[tuple[tuple[str, ...], str], CostGroup] = {}
    for row in rows:
        group_key = (key(row), row.currency)
        group = groups.get(group_key)
        if group is None:
            group = CostGroup(group_key[0], row.currency, Decimal(0), 0, 0)
            groups[group_key] = group
        group.rows += 1
        amount = row.cost(measure)
        if amount is None:
            group.null_rows += 1
        else:
            group.amount += amount
    return sorted(groups.values(), key=_largest_first)


def currency_totals(groups: Iterable[CostGroup]) -> dict[str, Decimal]:
    """Add the groups up per currency, currencies in alphabetical order.

    A currency whose rows all have a NULL cost is left out.
    """
    totals: dict[str, Decimal] = {}
    for group in groups:
        if not group.has_amount:
            continue
        totals[group.currency] = totals.get(group.currency, Decimal(0)) + group.amount
    return dict(sorted(totals.items()))


def round_cents(amount: Decimal) -> Decimal:
    """Round to cents, halves away from zero, and drop the sign of a zero."""
    rounded = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    return rounded.copy_abs() if rounded == 0 else rounded


def _largest_first(group: CostGroup) -> tuple[str, Decimal, tuple[str, ...]]:
    return (group.currency, -group.amount, group.key)
