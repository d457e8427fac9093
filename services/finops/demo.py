"""Generate a small deterministic FOCUS 1.0 data set for running without a file.

The data covers three providers, ten services and three months (2024-07 to
2024-09), tagged with `environment` and `team`. It adds the awkward cases of a
real export: credits with negative cost, a tax row, a purchase, an adjustment,
a correction, one row billed in EUR, untagged rows and NULL cells.

    python -m services.finops.demo OUT.csv    write the rows as a CSV file
"""

from __future__ import annotations

import csv
import random
import sys
from decimal import Decimal
from pathlib import Path

from services.finops.data import CostData, build_cost_data

# Any fixed value works; it only has to stay the same so tests and answers agree.
DEMO_SEED = 20240901
DEMO_COLUMNS = (
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "BillingCurrency",
    "ProviderName",
    "ServiceName",
    "ServiceCategory",
    "ChargeCategory",
    "ChargeClass",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "RegionId",
    "RegionName",
    "SubAccountName",
    "Tags",
)
MONTHS = ("2024-07", "2024-08", "2024-09")
ENVIRONMENTS = ("prod", "staging", "dev")
TEAMS = ("platform", "data", "web")
# (provider, service, service category, region id, monthly base cost in USD)
SERVICES = (
    ("AWS", "Amazon Elastic Compute Cloud", "Compute", "us-east-1", 900),
    ("AWS", "Amazon Simple Storage Service", "Storage", "us-east-1", 240),
    ("AWS", "Amazon Relational Database Service", "Databases", "eu-west-1", 510),
    ("AWS", "AWS Lambda", "Compute", "us-east-1", 35),
    ("Microsoft", "Virtual Machines", "Compute", "westeurope", 620),
    ("Microsoft", "Storage Accounts", "Storage", "westeurope", 130),
    ("Microsoft", "Azure SQL Database", "Databases", "northeurope", 410),
    ("Google Cloud", "Compute Engine", "Compute", "us-central1", 380),
    ("Google Cloud", "Cloud Storage", "Storage", "us-central1", 75),
    ("Google Cloud", "BigQuery", "Analytics", "US", 260),
)
REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "eu-west-1": "Europe (Ireland)",
    "westeurope": "West Europe",
    "northeurope": "North Europe",
    "us-central1": "Iowa",
    "US": "United States",
}
# Share of each environment in a service's monthly cost.
ENVIRONMENT_WEIGHTS = {
    "prod": Decimal("0.6"),
    "staging": Decimal("0.25"),
    "dev": Decimal("0.15"),
}
# Commitment discounts make EffectiveCost lower than BilledCost on these services.
DISCOUNTED_SERVICES = {
    "Amazon Elastic Compute Cloud": Decimal("0.72"),
    "Virtual Machines": Decimal("0.85"),
}
# Demo costs carry four decimal places, finer than the cents of an answer.
COST_STEP = Decimal("0.0001")


def demo_records(seed: int = DEMO_SEED) -> list[dict[str, str]]:
    """Return the demo rows as FOCUS column name to cell text, as a CSV has them."""
    rng = random.Random(seed)
    records: list[dict[str, str]] = []
    for month_index, month in enumerate(MONTHS):
        for provider, service, category, region_id, base in SERVICES:
            growth = Decimal(100 + 8 * month_index) / 100
            for environment in ENVIRONMENTS:
                noise = Decimal(rng.randint(85, 115)) / 100
                billed = base * growth * ENVIRONMENT_WEIGHTS[environment] * noise
                billed = billed.quantize(COST_STEP)
                record = _usage(provider, service, category, month, billed)
                record.update(RegionId=region_id, RegionName=REGION_NAMES[region_id])
                account = f"{provider.split()[0].lower()}-{environment}"
                record["SubAccountName"] = account
                team = rng.choice(TEAMS)
                record["Tags"] = f'{{"environment": "{environment}", "team": "{team}"}}'
                records.append(record)
    _add_special_rows(records)
    return records


def demo_cost_data(seed: int = DEMO_SEED) -> CostData:
    """Return the demo rows loaded as cost data; line numbers match `demo.csv`."""
    numbered = enumerate(demo_records(seed), start=2)
    return build_cost_data(numbered, DEMO_COLUMNS, "demo data")


def write_demo_csv(path: Path, seed: int = DEMO_SEED) -> int:
    """Write the demo rows to a CSV file and return the number of rows."""
    records = demo_records(seed)
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=DEMO_COLUMNS)
        writer.writeheader()
        writer.writerows(records)
    return len(records)


def _usage(
    provider: str, service: str, category: str, month: str, billed: Decimal
) -> dict[str, str]:
    effective = billed * DISCOUNTED_SERVICES.get(service, Decimal(1))
    start, end = _period(month, provider)
    return {
        "BilledCost": str(billed),
        "EffectiveCost": str(effective.quantize(COST_STEP)),
        "ListCost": str((billed * Decimal("1.1")).quantize(COST_STEP)),
        "BillingCurrency": "USD",
        "ProviderName": provider,
        "ServiceName": service,
        "ServiceCategory": category,
        "ChargeCategory": "Usage",
        "ChargeClass": "NULL",
        "ChargePeriodStart": start,
        "ChargePeriodEnd": end,
        "RegionId": "NULL",
        "RegionName": "NULL",
        "SubAccountName": "NULL",
        "Tags": "NULL",
    }


def _period(month: str, provider: str) -> tuple[str, str]:
    # AWS exports write ISO 8601 with a T and Z, others a space and no zone.
    year, number = (int(part) for part in month.split("-"))
    next_month = f"{year + number // 12}-{number % 12 + 1:02d}"
    if provider == "AWS":
        return f"{month}-01T00:00:00Z", f"{next_month}-01T00:00:00Z"
    return f"{month}-01 00:00:00", f"{next_month}-01 00:00:00"


def _special(
    provider: str,
    service: str,
    month: str,
    charge_category: str,
    billed: str,
    effective: str,
    **cells: str,
) -> dict[str, str]:
    record = _usage(provider, service, "Other", month, Decimal(billed))
    record.update(
        ChargeCategory=charge_category,
        EffectiveCost=effective,
        ListCost="NULL",
        SubAccountName=f"{provider.split()[0].lower()}-prod",
    )
    record.update(cells)
    return record


def _add_special_rows(records: list[dict[str, str]]) -> None:
    ec2, vms, bigquery = SERVICES[0][1], SERVICES[4][1], SERVICES[9][1]
    records += [
        _special("AWS", ec2, "2024-08", "Credit", "-50.00", "-50.00"),
        _special("Microsoft", vms, "2024-09", "Credit", "-25.50", "-25.50"),
        _special("Google Cloud", bigquery, "2024-07", "Credit", "-10.00", "-10.00"),
        _special("AWS", "Tax", "2024-09", "Tax", "41.37", "41.37", ServiceCategory=""),
        _special("AWS", ec2, "2024-07", "Purchase", "1200.00", "0.00"),
        _special("Google Cloud", bigquery, "2024-08", "Adjustment", "3.21", "3.21"),
        _special(
            "AWS",
            ec2,
            "2024-08",
            "Usage",
            "-12.34",
            "-8.88",
            ChargeClass="Correction",
            Tags='{"environment": "prod", "team": "platform"}',
        ),
        _special(
            "Microsoft",
            vms,
            "2024-09",
            "Usage",
            "187.65",
            "159.50",
            BillingCurrency="EUR",
            RegionId="westeurope",
            RegionName="West Europe",
            SubAccountName="microsoft-eu",
            Tags='{"environment": "prod", "team": "web"}',
        ),
        _special(
            "Google Cloud",
            "Cloud Storage",
            "2024-09",
            "Usage",
            "4.20",
            "NULL",
            RegionName="Iowa",
            Tags="",
        ),
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m services.finops.demo OUT.csv", file=sys.stderr)
        return 2
    count = write_demo_csv(Path(argv[0]))
    print(f"Wrote {count} demo FOCUS rows to {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
