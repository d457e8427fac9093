"""Load FOCUS 1.0 billing rows from CSV or Parquet into typed cost rows.

Money stays `decimal.Decimal` from the file to the answer, so sums are exact.
CSV is read with the standard library. Parquet needs pyarrow, which is imported
only when a Parquet file is loaded. `services.finops.cells` reads single cells.
"""

from __future__ import annotations

import csv
import gzip
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from services.common.settings import ConfigError, ServiceSettings, project_dir
from services.finops.cells import (
    MISSING,
    RowError,
    read_label,
    read_money,
    read_tags,
    read_text,
    read_timestamp,
)

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
            message = f"{position} {line}: {error}; fix or remove that row"
            raise RowError(message) from None
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
    tags, tags_ok = read_tags(record.get("Tags"))
    region = read_label(record.get("RegionId"))
    if region == MISSING:
        region = read_label(record.get("RegionName"))
    row = CostRow(
        billed_cost=read_money(record, "BilledCost"),
        effective_cost=read_money(record, "EffectiveCost"),
        list_cost=read_money(record, "ListCost"),
        currency=read_label(record.get("BillingCurrency")).upper(),
        provider=read_label(record.get("ProviderName")),
        service=read_label(record.get("ServiceName")),
        service_category=read_label(record.get("ServiceCategory")),
        charge_category=read_label(record.get("ChargeCategory")),
        charge_class=read_text(record.get("ChargeClass")),
        period_start=read_timestamp(record, "ChargePeriodStart"),
        period_end=read_timestamp(record, "ChargePeriodEnd"),
        region=region,
        sub_account=read_label(record.get("SubAccountName")),
        tags=tags,
        line=line,
    )
    return row, tags_ok
