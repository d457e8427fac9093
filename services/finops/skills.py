"""The FinOps agent's skills: cost totals and breakdowns over FOCUS billing data.

Each answer has Markdown text and records; `services.finops.report` documents
the money fields. Records per skill, with money fields named after the measure
(`billed_cost`, `effective_cost` or `list_cost`, each with an `_exact` twin):

- total_cost: currency, money, rows
- cost_by_provider: provider, currency, money, rows
- cost_by_service: provider, service, currency, money, rows
- top_services: provider, service, currency, money, rows, rank (1 = largest,
  counted per currency)
- cost_by_month: month (`YYYY-MM`), currency, money, rows
- cost_by_tag: tag_key, tag_value (None for untagged rows), currency, money, rows
- cost_by_region: provider, region, currency, money, rows
- cost_by_account: provider, sub_account, currency, money, rows
- credits: charge_category, charge_class (None or "Correction"), provider,
  service, currency, money, rows
- help: skill, example
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from services.common.answers import Answer, SkillInfo
from services.common.settings import ServiceSettings
from services.common.tokens import Identity
from services.finops.cells import MISSING
from services.finops.costs import CostGroup, group_costs, select_rows
from services.finops.data import CostData, CostRow, load_cost_data
from services.finops.query import CostQuery, parse_query
from services.finops.report import (
    MEASURE_LABELS,
    format_money,
    group_amount,
    group_record,
    markdown_table,
    notes,
    totals_line,
)

UNTAGGED = "(untagged)"
CREDIT_CATEGORIES = frozenset({"credit", "adjustment"})
# Enough keys to pick from without flooding the reply.
MAX_TAG_KEYS_SHOWN = 10
SKILL_TAGS = ["finops", "cost", "focus"]
# Up to this many cost rows, `answer` runs on the agent's event loop. Its time
# grows with the rows: about 0.4 ms for the 99 demo rows and 2.5 ms
# for 1000 rows (2-core AMD EPYC, Python 3.11), so larger data sets run in a
# worker thread and do not stall other requests.
INLINE_MAX_ROWS = 200
CATALOG = [
    SkillInfo("total_cost", "Total cost", "Total cloud cost per currency.", SKILL_TAGS,
              ["total cloud cost", "how much did we spend in 2024-09"]),
    SkillInfo("cost_by_provider", "Cost by provider", "Cost per cloud provider.",
              SKILL_TAGS, ["total cloud cost by provider"]),
    SkillInfo("cost_by_service", "Cost by service",
              "Cost per service, optionally for one provider.", SKILL_TAGS,
              ["AWS cost by service", "effective cost by service"]),
    SkillInfo("top_services", "Top services",
              "The N most expensive services per currency (default 5).",
              SKILL_TAGS, ["top 5 services", "top 3 services in 2024-09"]),
    SkillInfo("cost_by_month", "Cost by month",
              "Cost per calendar month of the charge period start.", SKILL_TAGS,
              ["cost by month", "monthly cost for Azure"]),
    SkillInfo("cost_by_tag", "Cost by tag", "Cost per value of one resource tag.",
              SKILL_TAGS, ["cost by environment", "cost by tag team"]),
    SkillInfo("cost_by_region", "Cost by region", "Cost per provider region.",
              SKILL_TAGS, ["cost by region"]),
    SkillInfo("cost_by_account", "Cost by sub account",
              "Cost per provider sub account.", SKILL_TAGS, ["cost by account"]),
    SkillInfo("credits", "Credits and adjustments",
              "Credits, adjustments and corrections, which usually lower the bill.",
              SKILL_TAGS, ["show credits", "AWS credits in 2024-09"]),
]  # fmt: skip


@dataclass(frozen=True)
class Breakdown:
    """Grouping key, title and record field names of one breakdown skill."""

    title: str
    key: Callable[[CostRow], tuple[str, ...]]
    labels: tuple[str, ...]


BREAKDOWNS = {
    "cost_by_provider": Breakdown(
        "by provider", lambda row: (row.provider,), ("provider",)
    ),
    "cost_by_service": Breakdown(
        "by service", lambda row: (row.provider, row.service), ("provider", "service")
    ),
    "top_services": Breakdown(
        "by service", lambda row: (row.provider, row.service), ("provider", "service")
    ),
    "cost_by_month": Breakdown("by month", lambda row: (row.month,), ("month",)),
    "cost_by_region": Breakdown(
        "by region", lambda row: (row.provider, row.region), ("provider", "region")
    ),
    "cost_by_account": Breakdown(
        "by sub account",
        lambda row: (row.provider, row.sub_account),
        ("provider", "sub_account"),
    ),
}


class FinOpsSkills:
    """Cost answers over one FOCUS data set, loaded once at construction.

    FinOps data is organisation-wide: every authenticated user may read all of
    it, so `answer` takes the caller's identity only to fit the Skills protocol
    and does not narrow the rows by it.
    """

    name = "FinOpsAgent"
    description = (
        "Answers cloud cost questions over FinOps FOCUS billing data: totals, "
        "breakdowns by provider, service, month, tag, region and account, top "
        "services, and credits."
    )

    def __init__(self, settings: ServiceSettings, data: CostData | None = None) -> None:
        """Load FINOPS_DATA (or the demo data); raise ConfigError when it is bad."""
        self.data = data if data is not None else load_cost_data(settings)
        self.catalog = list(CATALOG)
        self.blocking = len(self.data.rows) > INLINE_MAX_ROWS

    def answer(self, text: str, identity: Identity) -> Answer:
        """Map `text` to a skill and return its answer, or the skill list."""
        query = parse_query(text, self.data.providers)
        if query is None:
            return self.help()
        if not self.data.has_measure(query.measure):
            return Answer(
                query.skill,
                f"The data from {self.data.source} has no {query.measure} column; "
                "ask for billed cost or effective cost instead.",
            )
        rows = select_rows(self.data.rows, query.provider, query.month)
        if not rows:
            return Answer(query.skill, self._no_rows_text(query))
        if query.skill == "total_cost":
            return self._total(query, rows)
        if query.skill == "cost_by_tag":
            return self._by_tag(query, rows)
        if query.skill == "credits":
            return self._credits(query, rows)
        return self._breakdown(query, rows)

    def help(self) -> Answer:
        """Return the list of skills with example requests."""
        lines = ["No skill matches that request. I can answer these:", ""]
        records = []
        for skill in self.catalog:
            examples = ", ".join(f"“{example}”" for example in skill.examples)
            lines.append(f"- **{skill.name}**: {skill.description} Try {examples}.")
            records += [{"skill": skill.id, "example": ex} for ex in skill.examples]
        lines += [
            "",
            "Add a provider (“AWS”), a month (“in 2024-09”) or “effective cost” "
            "to any of them.",
        ]
        return Answer("help", "\n".join(lines), records)

    def _total(self, query: CostQuery, rows: list[CostRow]) -> Answer:
        groups = group_costs(rows, query.measure, lambda row: ())
        title = f"Total {MEASURE_LABELS[query.measure].lower()}"
        table = _table(["Currency"], groups, query, lambda group: [group.currency])
        text = [self._title(title, query), "", table]
        records = [group_record(group, query.measure, ()) for group in groups]
        return Answer("total_cost", self._finish(text, groups, query), records)

    def _breakdown(self, query: CostQuery, rows: list[CostRow]) -> Answer:
        breakdown = BREAKDOWNS[query.skill]
        groups = group_costs(rows, query.measure, breakdown.key)
        if query.skill == "cost_by_month":
            groups.sort(key=lambda g: (g.currency, g.key == (MISSING,), g.key))
        if query.limit is not None:
            groups = _top_per_currency(groups, query.limit)
        labels = breakdown.labels
        records = [group_record(group, query.measure, labels) for group in groups]
        if query.skill == "top_services":
            _add_ranks(records)

        measure_label = MEASURE_LABELS[query.measure]
        title = f"{measure_label} {breakdown.title}"
        if query.skill == "top_services":
            title = f"Top {query.limit} services by {measure_label.lower()}"
        elif query.limit is not None:
            title += f", top {query.limit} per currency"
        headers = [label.replace("_", " ").capitalize() for label in labels]
        text = [self._title(title, query), "", _table(headers, groups, query)]
        return Answer(query.skill, self._finish(text, groups, query), records)

    def _by_tag(self, query: CostQuery, rows: list[CostRow]) -> Answer:
        key_counts = Counter(name for row in rows for name in row.tags)
        spelled: dict[str, str] = {}
        for name, _ in key_counts.most_common():
            spelled.setdefault(name.casefold(), name)
        wanted = query.tag_key or ""
        if wanted.casefold() not in spelled:
            return Answer("cost_by_tag", _unknown_tag_text(wanted, key_counts))
        tag_key = spelled[wanted.casefold()]

        def tag_value(row: CostRow) -> tuple[str]:
            value = row.tag(tag_key)
            if value is None:
                return (UNTAGGED,)
            return (value or "(empty)",)

        groups = group_costs(rows, query.measure, tag_value)
        records = []
        for group in groups:
            record = group_record(group, query.measure, ("tag_value",))
            if group.key == (UNTAGGED,):
                record["tag_value"] = None
            records.append({"tag_key": tag_key, **record})
        title = f"{MEASURE_LABELS[query.measure]} by tag {tag_key}"
        table = _table([f"Tag {tag_key}"], groups, query)
        text = [self._title(title, query), "", table]
        return Answer("cost_by_tag", self._finish(text, groups, query), records)

    def _credits(self, query: CostQuery, rows: list[CostRow]) -> Answer:
        credits = [row for row in rows if _is_credit(row)]
        text = [self._title("Credits, adjustments and corrections", query), ""]
        if not credits:
            text.append("No Credit or Adjustment rows and no corrections.")
        groups = group_costs(credits, query.measure, _credit_key)
        groups.sort(key=lambda group: (group.currency, group.key[0], group.amount))
        labels = ("charge_category", "charge_class", "provider", "service")
        records = [group_record(group, query.measure, labels) for group in groups]
        for record in records:
            record["charge_class"] = record["charge_class"] or None

        if groups:
            summary = group_costs(credits, query.measure, _charge_kind)
            for group in summary:
                count = f"{group.rows} row{'s' if group.rows != 1 else ''}"
                text.append(f"- {group.key[0]}: {group_amount(group)} ({count})")
            headers = ["Charge", "Provider", "Service"]
            text += ["", _table(headers, groups, query, _credit_cells)]
        remarks = _negative_usage_note(rows, query.measure)
        return Answer("credits", self._finish(text, groups, query, remarks), records)

    def _title(self, title: str, query: CostQuery) -> str:
        scope = [f"measure {query.measure}"]
        if query.provider:
            scope.append(f"provider {query.provider}")
        else:
            scope.append("all providers")
        months = self.data.months
        if query.month:
            scope.append(f"month {query.month}")
        elif len(months) == 1:
            scope.append(f"month {months[0]}")
        elif months:
            scope.append(f"months {months[0]} to {months[-1]}")
        return f"**{title}** ({', '.join(scope)})"

    def _finish(
        self,
        text: list[str],
        groups: list[CostGroup],
        query: CostQuery,
        remarks: list[str] | None = None,
    ) -> str:
        if groups:
            text += ["", totals_line(groups, query.measure)]
        remarks = notes(groups, query.measure) + (remarks or [])
        if remarks:
            text += [""] + remarks
        return "\n".join(text)

    def _no_rows_text(self, query: CostQuery) -> str:
        wanted = []
        if query.provider:
            wanted.append(f"provider {query.provider}")
        if query.month:
            wanted.append(f"month {query.month}")
        return (
            f"No cost rows match {' and '.join(wanted)}. The data covers providers "
            f"{', '.join(self.data.providers)} and months "
            f"{', '.join(self.data.months)}."
        )


def _table(
    headers: list[str],
    groups: list[CostGroup],
    query: CostQuery,
    cells: Callable[[CostGroup], list[str]] = lambda group: list(group.key),
) -> str:
    lines = [cells(group) + [group_amount(group), str(group.rows)] for group in groups]
    return markdown_table(headers + [MEASURE_LABELS[query.measure], "Rows"], lines)


def _top_per_currency(groups: list[CostGroup], limit: int) -> list[CostGroup]:
    counts: Counter[str] = Counter()
    kept = []
    for group in groups:
        counts[group.currency] += 1
        if counts[group.currency] <= limit:
            kept.append(group)
    return kept


def _add_ranks(records: list[dict]) -> None:
    ranks: Counter[str] = Counter()
    for record in records:
        ranks[record["currency"]] += 1
        record["rank"] = ranks[record["currency"]]


def _unknown_tag_text(wanted: str, key_counts: Counter[str]) -> str:
    common = [name for name, _ in key_counts.most_common(MAX_TAG_KEYS_SHOWN)]
    if wanted:
        lead = f"No row carries the tag “{wanted}”."
    else:
        lead = "Name a tag key, for example “cost by tag team”."
    return f"{lead} Most used tag keys: {', '.join(common) or 'none'}."


def _is_credit(row: CostRow) -> bool:
    return (
        row.charge_category.casefold() in CREDIT_CATEGORIES
        or row.charge_class.casefold() == "correction"
    )


def _credit_key(row: CostRow) -> tuple[str, str, str, str]:
    return (row.charge_category, row.charge_class, row.provider, row.service)


def _charge_kind(row: CostRow) -> tuple[str]:
    return (_charge_label(row.charge_category, row.charge_class),)


def _charge_label(charge_category: str, charge_class: str) -> str:
    if charge_class:
        return f"{charge_category} ({charge_class.lower()})"
    return charge_category


def _credit_cells(group: CostGroup) -> list[str]:
    category, charge_class, provider, service = group.key
    return [_charge_label(category, charge_class), provider, service]


def _negative_usage_note(rows: list[CostRow], measure: str) -> list[str]:
    negative = []
    for row in rows:
        amount = row.cost(measure)
        if amount is not None and amount < 0 and not _is_credit(row):
            negative.append(row)
    if not negative:
        return []
    categories = ", ".join(sorted({row.charge_category for row in negative}))
    return [
        f"{len(negative)} other rows ({categories}) have a negative {measure}; "
        "they count under their own charge category, not as credits."
    ]
