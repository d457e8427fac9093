"""Load FOCUS 1.0 billing rows from CSV or Parquet into typed cost rows.

Money stays `decimal.Decimal` from the file to the answer, so sums are exact.
CSV is read with the standard library; Parquet needs pyarrow, imported only
when a Parquet file is loaded. `NULL` and empty cells become `None` (costs and
dates) or `MISSING` (labels).
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from services.common.settings import ConfigError, ServiceSettings, project_dir

# Columns every answer needs; FOCUS 1.0 makes all of them mandatory.
REQUIRED_COLUMNS = (
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
    "ProviderName",
    "ServiceName",
    "ChargeCategory",
    "ChargePeriodStart",
)
# Read when present; a file without them still loads.
OPTIONAL_COLUMNS = (
    "ListCost",
    "ServiceCategory",
    "ChargeClass",
    "ChargePeriodEnd",
    "RegionId",
    "RegionName",
    "SubAccountName",
    "Tags",
)
# The cost columns a request can choose between, with their record field names.
MEASURES = {
    "BilledCost": "billed_cost",
    "EffectiveCost": "effective_cost",
    "ListCost": "list_cost",
}
# Label for a missing provider, service, region, account or currency.
MISSING = "(none)"
NULL_MARKERS = frozenset({"", "null"})
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz")

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class CostRow:
    """One FOCUS charge row, with the columns the FinOps skills use."""

    billed_cost: Decimal | None
    effective_cost: Decimal | None
    list_cost: Decimal | None
    currency: str
    provider: str
    service: str
    service_category: str
    charge_category: str
    charge_class: str
    period_start: datetime | None
    period_end: datetime | None
    region: str
    sub_account: str
    tags: dict[str, str]
    line: int
    """CSV line (the header is line 1), or row number (from 1) for other sources."""

    @property
    def month(self) -> str:
        """Calendar month of the charge period start in UTC, as `YYYY-MM`."""
        if self.period_start is None:
            return MISSING
        return self.period_start.strftime("%Y-%m")

    def cost(self, measure: str) -> Decimal | None:
        """Return the value of one cost column named as in FOCUS (`BilledCost`)."""
        return getattr(self, MEASURES[measure])

    def tag(self, key: str) -> str | None:
        """Return the value of tag `key`, compared without regard to case."""
        wanted = key.casefold()
        for name, value in self.tags.items():
            if name.casefold() == wanted:
                return value
        return None


@dataclass
class CostData:
    """Every cost row of one source plus what loading it found."""

    rows: list[CostRow]
    source: str
    columns: frozenset[str]
    malformed_tags: int = 0
    null_costs: dict[str, int] = field(default_factory=dict)
    """Rows with a NULL or empty cell, per cost column."""

    @property
    def providers(self) -> list[str]:
        return sorted({row.provider for row in self.rows})

    @property
    def currencies(self) -> list[str]:
        return sorted({row.currency for row in self.rows})

    @property
    def months(self) -> list[str]:
        return sorted({row.month for row in self.rows})

    def has_measure(self, measure: str) -> bool:
        return measure in self.columns


class RowError(ValueError):
    """One cell cannot be read; the loader adds the source and line."""


def load_cost_data(settings: ServiceSettings) -> CostData:
    """Load the file named by FINOPS_DATA, or the demo data when it is empty.

    Raises ConfigError with one line naming the path and the problem when the
    file is missing, unreadable, or lacks a required FOCUS column.
    """
    raw = settings.env.get("FINOPS_DATA", "").strip()
    if not raw:
        # Imported here because the demo module imports this one.
        from services.finops.demo import demo_cost_data

        data = demo_cost_data()
        logger.info("Loaded %d demo FOCUS rows (FINOPS_DATA is empty)", len(data.rows))
        return data
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = project_dir() / path
    return read_focus_file(path)


def read_focus_file(path: Path) -> CostData:
    """Read a FOCUS CSV (`.csv`, `.csv.gz`) or Parquet (`.parquet`, `.pq`) file."""
    name = path.name.lower()
    if not name.endswith(CSV_SUFFIXES + PARQUET_SUFFIXES):
        raise ConfigError(
            f"invalid FINOPS_DATA {path}: unsupported file type; "
            f"use one of {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
        )
    if not path.is_file():
        raise ConfigError(
            f"invalid FINOPS_DATA {path}: file not found; point it at a FOCUS "
            "CSV or Parquet file, or leave it empty for the demo data"
        )
    try:
        if name.endswith(PARQUET_SUFFIXES):
            data = _read_parquet(path)
        else:
            data = _read_csv(path)
    except RowError as error:
        raise ConfigError(f"invalid FINOPS_DATA {path}: {error}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"unreadable FINOPS_DATA {path}: {error}") from None
    logger.info(
        "Loaded %d FOCUS rows from %s (providers: %s; currencies: %s)",
        len(data.rows),
        path,
        ", ".join(data.providers) or "none",
        ", ".join(data.currencies) or "none",
    )
    return data


def build_cost_data(
    records: Iterable[tuple[int, Mapping[str, Any]]],
    columns: Iterable[str],
    source: str,
    position: str = "line",
) -> CostData:
    """Convert `(line, record)` pairs with FOCUS column names into cost rows.

    Raises RowError for a cost or date cell that is not NULL and cannot be read.
    The message names the `position`: "line" for CSV, "row" otherwise.
    """
    data = CostData(rows=[], source=source, columns=frozenset(columns))
    first_malformed = 0
    for line, record in records:
        try:
            row, tags_ok = _make_row(line, record)
        except RowError as error:
            raise RowError(f"{position} {line}: {error}") from None
        data.rows.append(row)
        if not tags_ok:
            data.malformed_tags += 1
            first_malformed = first_malformed or line
        for measure in MEASURES:
            if measure in data.columns and row.cost(measure) is None:
                data.null_costs[measure] = data.null_costs.get(measure, 0) + 1
    if data.malformed_tags:
        logger.warning(
            "Ignored malformed Tags in %d rows of %s (first at %s %d); "
            "those rows count as untagged",
            data.malformed_tags,
            source,
            position,
            first_malformed,
        )
    return data


def check_columns(columns: Iterable[str]) -> None:
    """Raise RowError naming every required FOCUS column that is absent."""
    missing = [name for name in REQUIRED_COLUMNS if name not in set(columns)]
    if missing:
        raise RowError(f"missing FOCUS columns {', '.join(missing)}")


def _read_csv(path: Path) -> CostData:
    with _open_text(path) as stream:
        reader = csv.DictReader(stream)
        if reader.fieldnames is None:
            raise RowError("no header row; the first line must name the FOCUS columns")
        columns = [name.strip() for name in reader.fieldnames]
        reader.fieldnames = columns
        check_columns(columns)

        def numbered() -> Iterator[tuple[int, Mapping[str, Any]]]:
            for record in reader:
                yield reader.line_num, record

        return build_cost_data(numbered(), columns, str(path))


def _open_text(path: Path) -> TextIO:
    # utf-8-sig drops the byte order mark some billing exports start with.
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_parquet(path: Path) -> CostData:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise RowError("reading Parquet needs pyarrow; run `pip install pyarrow`")
    try:
        parquet_file = parquet.ParquetFile(path)
    except Exception as error:  # pyarrow raises its own ArrowInvalid and others
        raise RowError(f"not a readable Parquet file ({error})") from None
    columns = list(parquet_file.schema_arrow.names)
    check_columns(columns)
    wanted = [name for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if name in columns]

    def numbered() -> Iterator[tuple[int, Mapping[str, Any]]]:
        number = 0
        for batch in parquet_file.iter_batches(columns=wanted):
            for record in batch.to_pylist():
                number += 1
                yield number, record

    return build_cost_data(numbered(), columns, str(path), position="row")


def _make_row(line: int, record: Mapping[str, Any]) -> tuple[CostRow, bool]:
    tags, tags_ok = parse_tags(record.get("Tags"))
    region = _label(record.get("RegionId"))
    if region == MISSING:
        region = _label(record.get("RegionName"))
    row = CostRow(
        billed_cost=_money(record, "BilledCost"),
        effective_cost=_money(record, "EffectiveCost"),
        list_cost=_money(record, "ListCost"),
        currency=_label(record.get("BillingCurrency")).upper(),
        provider=_label(record.get("ProviderName")),
        service=_label(record.get("ServiceName")),
        service_category=_label(record.get("ServiceCategory")),
        charge_category=_label(record.get("ChargeCategory")),
        charge_class=_text(record.get("ChargeClass")),
        period_start=_timestamp(record, "ChargePeriodStart"),
        period_end=_timestamp(record, "ChargePeriodEnd"),
        region=region,
        sub_account=_label(record.get("SubAccountName")),
        tags=tags,
        line=line,
    )
    return row, tags_ok


def parse_tags(value: Any) -> tuple[dict[str, str], bool]:
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


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = str(value).strip()
    return "" if text.lower() in NULL_MARKERS else text


def _label(value: Any) -> str:
    return _text(value) or MISSING


def _money(record: Mapping[str, Any], column: str) -> Decimal | None:
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


def _timestamp(record: Mapping[str, Any], column: str) -> datetime | None:
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
