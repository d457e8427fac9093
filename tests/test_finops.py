"""Tests of the FinOps skills on the real FOCUS sample and on the demo data.

Expected values are recomputed here from the raw cells with `csv`, `json` and
Decimal, independently of the loader, so a wrong sum in the service fails.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import FOCUS_SAMPLE

from services.common.settings import ConfigError, ServiceSettings
from services.common.tokens import Identity
from services.finops import demo
from services.finops.cells import RowError, read_money, read_tags, read_timestamp
from services.finops.costs import round_cents
from services.finops.data import REQUIRED_COLUMNS, load_cost_data, read_focus_file
from services.finops.query import parse_query
from services.finops.skills import FinOpsSkills

ALEX = Identity(username="alex", role="user", claims={})
Key = Callable[[Mapping[str, str]], tuple[str, ...]]

needs_sample = pytest.mark.skipif(
    not FOCUS_SAMPLE.exists(), reason=f"FOCUS sample not found at {FOCUS_SAMPLE}"
)


def make_settings(tmp_path: Path, finops_data: str = "") -> ServiceSettings:
    return ServiceSettings(
        env={"FINOPS_DATA": finops_data}, host="127.0.0.1", run_dir=tmp_path / "run"
    )


def cell_amount(value: str | None) -> Decimal | None:
    if value is None or value.strip() in ("", "NULL"):
        return None
    return Decimal(value)


def cell_tags(value: str) -> dict[str, str]:
    if value.strip() in ("", "NULL"):
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {key.strip(): item for key, item in parsed.items()}


def expected_sums(
    rows: Iterable[Mapping[str, str]], key: Key, column: str = "BilledCost"
) -> dict[tuple[tuple[str, ...], str], Decimal]:
    """Sum `column` per (key, currency), skipping NULL cells."""
    sums: dict[tuple[tuple[str, ...], str], Decimal] = defaultdict(Decimal)
    for row in rows:
        amount = cell_amount(row[column])
        group = (key(row), row["BillingCurrency"])
        sums[group] += amount if amount is not None else Decimal(0)
    return dict(sums)


def record_sums(
    records: list[dict], labels: tuple[str, ...], field: str = "billed_cost"
) -> dict[tuple[tuple[str, ...], str], Decimal]:
    return {
        (tuple(record[label] for label in labels), record["currency"]): Decimal(
            record[f"{field}_exact"]
        )
        for record in records
    }


def by_provider(row: Mapping[str, str]) -> tuple[str, ...]:
    return (row["ProviderName"],)


def by_service(row: Mapping[str, str]) -> tuple[str, ...]:
    return (row["ProviderName"], row["ServiceName"])


def by_month(row: Mapping[str, str]) -> tuple[str, ...]:
    return (row["ChargePeriodStart"][:7],)


# The real FOCUS sample


@pytest.fixture(scope="module")
def sample_rows() -> list[dict[str, str]]:
    if not FOCUS_SAMPLE.exists():
        pytest.skip(f"FOCUS sample not found at {FOCUS_SAMPLE}")
    with open(FOCUS_SAMPLE, encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def sample_skills(tmp_path_factory: pytest.TempPathFactory) -> FinOpsSkills:
    if not FOCUS_SAMPLE.exists():
        pytest.skip(f"FOCUS sample not found at {FOCUS_SAMPLE}")
    tmp_path = tmp_path_factory.mktemp("sample")
    return FinOpsSkills(make_settings(tmp_path, str(FOCUS_SAMPLE)))


@needs_sample
def test_sample_loads_every_row(sample_skills, sample_rows):
    assert len(sample_skills.data.rows) == len(sample_rows)
    assert sample_skills.data.providers == sorted(
        {row["ProviderName"] for row in sample_rows}
    )
    assert sample_skills.data.currencies == sorted(
        {row["BillingCurrency"] for row in sample_rows}
    )


@needs_sample
def test_sample_total_matches_csv_sum(sample_skills, sample_rows):
    answer = sample_skills.answer("how much did we spend", ALEX)
    expected = expected_sums(sample_rows, lambda row: ())
    assert answer.skill == "total_cost"
    assert record_sums(answer.records, ()) == expected


@needs_sample
def test_sample_by_provider_matches_csv_sums(sample_skills, sample_rows):
    answer = sample_skills.answer("total cloud cost by provider", ALEX)
    assert answer.skill == "cost_by_provider"
    expected = expected_sums(sample_rows, by_provider)
    assert record_sums(answer.records, ("provider",)) == expected
    for provider in ("AWS", "Microsoft", "Oracle"):
        assert provider in answer.text


@needs_sample
def test_sample_by_service_matches_csv_sums(sample_skills, sample_rows):
    answer = sample_skills.answer("cost by service", ALEX)
    expected = expected_sums(sample_rows, by_service)
    assert record_sums(answer.records, ("provider", "service")) == expected


@needs_sample
def test_sample_by_month_matches_csv_sums(sample_skills, sample_rows):
    answer = sample_skills.answer("cost by month", ALEX)
    expected = expected_sums(sample_rows, by_month)
    assert record_sums(answer.records, ("month",)) == expected


@needs_sample
def test_sample_effective_cost_by_provider(sample_skills, sample_rows):
    answer = sample_skills.answer("effective cost by provider", ALEX)
    expected = expected_sums(sample_rows, by_provider, "EffectiveCost")
    assert record_sums(answer.records, ("provider",), "effective_cost") == expected


@needs_sample
def test_sample_top_services_order(sample_skills, sample_rows):
    answer = sample_skills.answer("top 5 services", ALEX)
    sums = expected_sums(sample_rows, by_service)
    ranked = sorted(sums.items(), key=lambda item: item[1], reverse=True)[:5]
    assert answer.skill == "top_services"
    assert [r["service"] for r in answer.records] == [k[0][1] for k, _ in ranked]
    assert [r["rank"] for r in answer.records] == [1, 2, 3, 4, 5]


@needs_sample
def test_sample_credits_are_negative_credit_rows(sample_skills, sample_rows):
    credit_rows = [row for row in sample_rows if row["ChargeCategory"] == "Credit"]
    answer = sample_skills.answer("show credits", ALEX)
    credit_records = [
        record for record in answer.records if record["charge_category"] == "Credit"
    ]
    assert credit_rows
    assert all(cell_amount(row["BilledCost"]) < 0 for row in credit_rows)
    assert sum(record["rows"] for record in credit_records) == len(credit_rows)
    assert sum(Decimal(r["billed_cost_exact"]) for r in credit_records) == sum(
        Decimal(row["BilledCost"]) for row in credit_rows
    )


@needs_sample
def test_sample_adjustments_listed_with_credits(sample_skills, sample_rows):
    adjustments = [r for r in sample_rows if r["ChargeCategory"] == "Adjustment"]
    answer = sample_skills.answer("show credits", ALEX)
    records = [r for r in answer.records if r["charge_category"] == "Adjustment"]
    assert sum(record["rows"] for record in records) == len(adjustments)


@needs_sample
def test_sample_tags_parsed(sample_skills, sample_rows):
    tagged = [row for row in sample_rows if "environment" in cell_tags(row["Tags"])]
    loaded = [row for row in sample_skills.data.rows if row.tag("environment")]
    assert sample_skills.data.malformed_tags == 0
    assert len(loaded) == len(tagged)


@needs_sample
def test_sample_cost_by_environment(sample_skills, sample_rows):
    answer = sample_skills.answer("cost by environment", ALEX)

    def environment(row: Mapping[str, str]) -> tuple[str, ...]:
        return (cell_tags(row["Tags"]).get("environment"),)

    expected = expected_sums(sample_rows, environment)
    assert answer.skill == "cost_by_tag"
    assert record_sums(answer.records, ("tag_value",)) == expected


@needs_sample
def test_sample_tag_keys_lose_spaces(sample_skills, sample_rows):
    # Some rows carry both "org" and " org"; both read as the key "org".
    spaced = [i for i, row in enumerate(sample_rows) if '" org"' in row["Tags"]]
    loaded = sample_skills.data.rows
    assert spaced
    for index in spaced:
        assert "org" in loaded[index].tags, sample_rows[index]["Tags"]
        assert " org" not in loaded[index].tags, sample_rows[index]["Tags"]


@needs_sample
def test_sample_provider_filter(sample_skills, sample_rows):
    answer = sample_skills.answer("Microsoft cost by service", ALEX)
    microsoft = [row for row in sample_rows if row["ProviderName"] == "Microsoft"]
    expected = expected_sums(microsoft, by_service)
    assert record_sums(answer.records, ("provider", "service")) == expected


# The demo data


@pytest.fixture(scope="module")
def demo_rows() -> list[dict[str, str]]:
    return demo.demo_records()


@pytest.fixture(scope="module")
def demo_skills(tmp_path_factory: pytest.TempPathFactory) -> FinOpsSkills:
    return FinOpsSkills(make_settings(tmp_path_factory.mktemp("demo")))


def test_demo_is_deterministic():
    assert demo.demo_records() == demo.demo_records()


def test_demo_has_every_charge_category(demo_rows):
    categories = {row["ChargeCategory"] for row in demo_rows}
    assert categories == {"Usage", "Purchase", "Tax", "Credit", "Adjustment"}


def test_demo_total_per_currency(demo_skills, demo_rows):
    answer = demo_skills.answer("total cloud cost", ALEX)
    assert record_sums(answer.records, ()) == expected_sums(demo_rows, lambda row: ())


def test_demo_currencies_never_summed(demo_skills, demo_rows):
    answer = demo_skills.answer("total cloud cost", ALEX)
    eur_rows = [row for row in demo_rows if row["BillingCurrency"] == "EUR"]
    usd_only = sum(
        Decimal(row["BilledCost"])
        for row in demo_rows
        if row["BillingCurrency"] == "USD"
    )
    totals = {record["currency"]: record for record in answer.records}
    assert sorted(totals) == ["EUR", "USD"]
    assert Decimal(totals["EUR"]["billed_cost_exact"]) == Decimal(
        eur_rows[0]["BilledCost"]
    )
    assert Decimal(totals["USD"]["billed_cost_exact"]) == usd_only
    assert "2 currencies (EUR, USD)" in answer.text


def test_demo_text_states_each_currency_total(demo_skills, demo_rows):
    answer = demo_skills.answer("cost by provider", ALEX)
    usd_rows = [row for row in demo_rows if row["BillingCurrency"] == "USD"]
    usd = sum(Decimal(row["BilledCost"]) for row in usd_rows)
    assert f"{round_cents(usd):,.2f} USD" in answer.text
    assert "187.65 EUR" in answer.text


def test_demo_by_provider(demo_skills, demo_rows):
    answer = demo_skills.answer("total cloud cost by provider", ALEX)
    expected = expected_sums(demo_rows, by_provider)
    assert record_sums(answer.records, ("provider",)) == expected


def test_demo_by_service_for_provider_and_month(demo_skills, demo_rows):
    answer = demo_skills.answer("AWS cost by service in 2024-08", ALEX)
    selected = [
        row
        for row in demo_rows
        if row["ProviderName"] == "AWS" and row["ChargePeriodStart"][:7] == "2024-08"
    ]
    expected = expected_sums(selected, by_service)
    assert answer.skill == "cost_by_service"
    assert record_sums(answer.records, ("provider", "service")) == expected


def test_demo_top_services_per_currency(demo_skills, demo_rows):
    answer = demo_skills.answer("top 3 services", ALEX)
    usd = [row for row in demo_rows if row["BillingCurrency"] == "USD"]
    ranked = sorted(
        expected_sums(usd, by_service).items(), key=lambda item: item[1], reverse=True
    )
    usd_records = [r for r in answer.records if r["currency"] == "USD"]
    eur_records = [r for r in answer.records if r["currency"] == "EUR"]
    assert [r["service"] for r in usd_records] == [k[0][1] for k, _ in ranked[:3]]
    assert [r["rank"] for r in usd_records] == [1, 2, 3]
    assert [r["rank"] for r in eur_records] == [1]


def test_demo_by_month(demo_skills, demo_rows):
    answer = demo_skills.answer("cost by month", ALEX)
    expected = expected_sums(demo_rows, by_month)
    usd_months = [r["month"] for r in answer.records if r["currency"] == "USD"]
    assert record_sums(answer.records, ("month",)) == expected
    assert usd_months == ["2024-07", "2024-08", "2024-09"]


@pytest.mark.parametrize("request_text", ["cost by team", "cost by tag team"])
def test_demo_by_tag_team(demo_skills, demo_rows, request_text):
    answer = demo_skills.answer(request_text, ALEX)

    def team(row: Mapping[str, str]) -> tuple[str, ...]:
        return (cell_tags(row["Tags"]).get("team"),)

    assert answer.skill == "cost_by_tag"
    assert record_sums(answer.records, ("tag_value",)) == expected_sums(demo_rows, team)


def test_demo_untagged_rows_have_no_tag_value(demo_skills, demo_rows):
    answer = demo_skills.answer("cost by environment", ALEX)
    untagged = [r for r in demo_rows if not cell_tags(r["Tags"])]
    records = [r for r in answer.records if r["tag_value"] is None]
    assert sum(record["rows"] for record in records) == len(untagged)
    assert "(untagged)" in answer.text


def test_demo_unknown_tag_lists_keys(demo_skills):
    answer = demo_skills.answer("cost by tag owner", ALEX)
    assert answer.records == []
    assert "environment, team" in answer.text


def test_demo_by_region_and_account(demo_skills, demo_rows):
    regions = demo_skills.answer("cost by region", ALEX)
    accounts = demo_skills.answer("cost by account", ALEX)

    def region(row: Mapping[str, str]) -> tuple[str, ...]:
        name = row["RegionId"] if row["RegionId"] != "NULL" else row["RegionName"]
        return (row["ProviderName"], name if name != "NULL" else "(none)")

    def account(row: Mapping[str, str]) -> tuple[str, ...]:
        return (row["ProviderName"], row["SubAccountName"])

    assert record_sums(regions.records, ("provider", "region")) == expected_sums(
        demo_rows, region
    )
    assert record_sums(accounts.records, ("provider", "sub_account")) == expected_sums(
        demo_rows, account
    )


def test_demo_credits(demo_skills, demo_rows):
    answer = demo_skills.answer("show credits", ALEX)
    credits = [row for row in demo_rows if row["ChargeCategory"] == "Credit"]
    credit_records = [r for r in answer.records if r["charge_category"] == "Credit"]
    corrections = [r for r in answer.records if r["charge_class"] == "Correction"]
    assert len(credits) == 3
    assert all(Decimal(row["BilledCost"]) < 0 for row in credits)
    assert sum(Decimal(r["billed_cost_exact"]) for r in credit_records) == sum(
        Decimal(row["BilledCost"]) for row in credits
    )
    assert [r["billed_cost"] for r in corrections] == ["-12.34"]
    assert "Adjustment" in answer.text


def test_demo_credits_for_provider(demo_skills):
    answer = demo_skills.answer("AWS credits", ALEX)
    assert {record["provider"] for record in answer.records} == {"AWS"}


def test_demo_null_effective_cost_skipped(demo_skills, demo_rows):
    answer = demo_skills.answer("total effective cost", ALEX)
    expected = expected_sums(demo_rows, lambda row: (), "EffectiveCost")
    assert record_sums(answer.records, (), "effective_cost") == expected
    assert "1 rows have no EffectiveCost value" in answer.text
    assert demo_skills.data.null_costs["EffectiveCost"] == 1


def test_demo_null_list_cost_counted(demo_skills, demo_rows):
    nulls = [row for row in demo_rows if row["ListCost"] == "NULL"]
    assert demo_skills.data.null_costs["ListCost"] == len(nulls)


def test_demo_all_null_group_has_no_value(demo_skills):
    # The one EUR row has a NULL ListCost, so EUR has no list cost at all.
    answer = demo_skills.answer("list cost by provider", ALEX)
    eur = [record for record in answer.records if record["currency"] == "EUR"]
    assert eur[0]["list_cost"] is None
    assert "no value" in answer.text
    assert "EUR" not in answer.text.split("**Total")[1].split("\n")[0]


def test_demo_no_rows_for_month(demo_skills):
    answer = demo_skills.answer("total cost in 2023-01", ALEX)
    assert answer.records == []
    assert "No cost rows match month 2023-01" in answer.text


def test_demo_unmappable_lists_skills(demo_skills):
    answer = demo_skills.answer("what is the weather like", ALEX)
    skill_ids = {record["skill"] for record in answer.records}
    assert answer.skill == "help"
    assert skill_ids == {skill.id for skill in demo_skills.catalog}
    assert "top 5 services" in answer.text


def test_catalog_examples_map_to_their_skill(demo_skills):
    for skill in demo_skills.catalog:
        for example in skill.examples:
            answer = demo_skills.answer(example, ALEX)
            assert answer.skill == skill.id, example


def test_skills_identity_attributes(demo_skills):
    assert demo_skills.name == "FinOpsAgent"
    assert len({skill.id for skill in demo_skills.catalog}) == len(demo_skills.catalog)


# Request parsing


@pytest.mark.parametrize(
    ("text", "skill", "fields"),
    [
        ("total cloud cost", "total_cost", {}),
        ("how much did we spend", "total_cost", {}),
        ("total cloud cost by provider", "cost_by_provider", {}),
        ("AWS cost by service", "cost_by_service", {"provider": "AWS"}),
        ("top 5 services", "top_services", {"limit": 5}),
        ("top services", "top_services", {"limit": 5}),
        ("top ten services", "top_services", {"limit": 10}),
        ("top 3 providers", "cost_by_provider", {"limit": 3}),
        ("cost by month in 2024-09", "cost_by_month", {"month": "2024-09"}),
        ("spend in September 2024", "total_cost", {"month": "2024-09"}),
        ("cost by environment", "cost_by_tag", {"tag_key": "environment"}),
        ("cost by tag team", "cost_by_tag", {"tag_key": "team"}),
        ('cost by tag "Cost Center"', "cost_by_tag", {"tag_key": "cost center"}),
        ("show credits", "credits", {}),
        ("effective cost by service", "cost_by_service", {"measure": "EffectiveCost"}),
        ("Azure cost", "total_cost", {"provider": "Microsoft"}),
        ("gcp cost by region", "cost_by_region", {"provider": "Google Cloud"}),
        ("top 5 services by cost", "top_services", {"limit": 5}),
    ],
)
def test_parse_query_maps_request(text, skill, fields):
    query = parse_query(text, ["AWS", "Microsoft", "Google Cloud"])
    assert query is not None
    assert query.skill == skill
    for name, value in fields.items():
        assert getattr(query, name) == value, name


def test_parse_query_unmappable_is_none():
    assert parse_query("hello there", ["AWS"]) is None


# Loading files


def write_csv(path: Path, rows: list[dict[str, str]], columns: Iterable[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def test_demo_csv_round_trip(tmp_path, demo_rows):
    path = tmp_path / "demo.csv"
    assert demo.main([str(path)]) == 0
    loaded = FinOpsSkills(make_settings(tmp_path, str(path)))
    answer = loaded.answer("cost by service", ALEX)
    assert record_sums(answer.records, ("provider", "service")) == expected_sums(
        demo_rows, by_service
    )


def test_relative_path_uses_project_dir(tmp_path, monkeypatch):
    demo.write_demo_csv(tmp_path / "billing.csv")
    monkeypatch.setenv("JARVIS_PROJECT_DIR", str(tmp_path))
    data = load_cost_data(make_settings(tmp_path, "billing.csv"))
    assert data.source == str(tmp_path / "billing.csv")


def test_malformed_tags_count_as_untagged(tmp_path, demo_rows, caplog):
    rows = [dict(row) for row in demo_rows]
    rows[0]["Tags"] = '{"environment": "prod"'
    rows[1]["Tags"] = '["environment", "dev"]'
    path = tmp_path / "broken_tags.csv"
    write_csv(path, rows, demo.DEMO_COLUMNS)

    with caplog.at_level(logging.WARNING, logger="services.finops.data"):
        skills = FinOpsSkills(make_settings(tmp_path, str(path)))
    answer = skills.answer("cost by environment", ALEX)

    untagged = [r for r in answer.records if r["tag_value"] is None]
    expected_untagged = sum(1 for row in rows if not cell_tags(row["Tags"]))
    warnings = [r for r in caplog.records if "malformed Tags" in r.getMessage()]
    assert skills.data.malformed_tags == 2
    assert len(warnings) == 1
    assert "2 rows" in warnings[0].getMessage()
    assert untagged[0]["rows"] == expected_untagged


def test_parquet_round_trip_as_text(tmp_path, demo_rows):
    parquet = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    path = tmp_path / "demo.parquet"
    parquet.write_table(pa.Table.from_pylist(demo_rows), path)

    skills = FinOpsSkills(make_settings(tmp_path, str(path)))
    answer = skills.answer("cost by provider", ALEX)
    assert record_sums(answer.records, ("provider",)) == expected_sums(
        demo_rows, by_provider
    )


def test_parquet_typed_columns(tmp_path, demo_rows):
    parquet = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    money_columns = ("BilledCost", "EffectiveCost", "ListCost")
    time_columns = ("ChargePeriodStart", "ChargePeriodEnd")

    def typed(row: dict[str, str]) -> dict[str, object]:
        converted: dict[str, object] = {
            key: None if value == "NULL" else value for key, value in row.items()
        }
        for column in money_columns:
            converted[column] = cell_amount(row[column])
        for column in time_columns:
            converted[column] = datetime.fromisoformat(row[column])
        converted["Tags"] = list(cell_tags(row["Tags"]).items()) or None
        return converted

    fields = []
    for name in demo.DEMO_COLUMNS:
        if name in money_columns:
            fields.append((name, pa.decimal128(20, 10)))
        elif name in time_columns:
            fields.append((name, pa.timestamp("s", tz="UTC")))
        elif name == "Tags":
            fields.append((name, pa.map_(pa.string(), pa.string())))
        else:
            fields.append((name, pa.string()))
    path = tmp_path / "typed.parquet"
    table = pa.Table.from_pylist([typed(row) for row in demo_rows], pa.schema(fields))
    parquet.write_table(table, path)

    skills = FinOpsSkills(make_settings(tmp_path, str(path)))
    months = skills.answer("cost by month", ALEX)
    effective = skills.answer("total effective cost", ALEX)
    teams = skills.answer("cost by team", ALEX)

    def team(row: Mapping[str, str]) -> tuple[str, ...]:
        return (cell_tags(row["Tags"]).get("team"),)

    assert record_sums(months.records, ("month",)) == expected_sums(
        demo_rows, by_month
    )
    assert record_sums(effective.records, (), "effective_cost") == expected_sums(
        demo_rows, lambda row: (), "EffectiveCost"
    )
    assert record_sums(teams.records, ("tag_value",)) == expected_sums(
        demo_rows, team
    )


def test_missing_file_raises_config_error(tmp_path):
    path = tmp_path / "nowhere.csv"
    with pytest.raises(ConfigError) as caught:
        FinOpsSkills(make_settings(tmp_path, str(path)))
    assert str(path) in str(caught.value)
    assert "file not found" in str(caught.value)


def test_missing_columns_raise_config_error(tmp_path, demo_rows):
    kept = [c for c in demo.DEMO_COLUMNS if c not in ("BilledCost", "ProviderName")]
    rows = [{column: row[column] for column in kept} for row in demo_rows]
    path = tmp_path / "partial.csv"
    write_csv(path, rows, kept)
    with pytest.raises(ConfigError) as caught:
        read_focus_file(path)
    message = str(caught.value)
    assert str(path) in message
    assert "missing FOCUS columns BilledCost, ProviderName" in message


def test_missing_columns_in_parquet(tmp_path):
    parquet = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    path = tmp_path / "other.parquet"
    parquet.write_table(pa.table({"Cost": ["1.00"]}), path)
    with pytest.raises(ConfigError) as caught:
        read_focus_file(path)
    for column in REQUIRED_COLUMNS:
        assert column in str(caught.value)


def test_invalid_cost_cell_names_line(tmp_path, demo_rows):
    rows = [dict(row) for row in demo_rows]
    rows[2]["BilledCost"] = "12,50"
    path = tmp_path / "bad_cost.csv"
    write_csv(path, rows, demo.DEMO_COLUMNS)
    with pytest.raises(ConfigError) as caught:
        read_focus_file(path)
    assert "line 4: BilledCost '12,50' is not a number" in str(caught.value)


def test_invalid_date_cell_raises(tmp_path, demo_rows):
    rows = [dict(row) for row in demo_rows]
    rows[0]["ChargePeriodStart"] = "01/09/2024"
    path = tmp_path / "bad_date.csv"
    write_csv(path, rows, demo.DEMO_COLUMNS)
    with pytest.raises(ConfigError) as caught:
        read_focus_file(path)
    assert "line 2: ChargePeriodStart '01/09/2024'" in str(caught.value)


def test_unsupported_extension_raises(tmp_path):
    path = tmp_path / "billing.xlsx"
    path.write_bytes(b"")
    with pytest.raises(ConfigError) as caught:
        read_focus_file(path)
    assert "unsupported file type" in str(caught.value)


def test_empty_csv_raises(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(ConfigError) as caught:
        read_focus_file(path)
    assert "no header row" in str(caught.value)


def test_not_parquet_raises(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "fake.parquet"
    path.write_text("BilledCost\n1\n")
    with pytest.raises(ConfigError) as caught:
        read_focus_file(path)
    assert "not a readable Parquet file" in str(caught.value)


def test_round_cents_half_away_from_zero():
    assert str(round_cents(Decimal("2.675"))) == "2.68"
    assert str(round_cents(Decimal("-2.675"))) == "-2.68"
    assert str(round_cents(Decimal("-0.001"))) == "0.00"


def test_read_money_accepts_numbers():
    assert read_money({"BilledCost": 0.1}, "BilledCost") == Decimal("0.1")
    assert read_money({"BilledCost": 3}, "BilledCost") == Decimal(3)
    assert read_money({"BilledCost": " NULL "}, "BilledCost") is None
    assert read_money({}, "BilledCost") is None


@pytest.mark.parametrize("value", ["NaN", "Infinity", "12,50", True])
def test_read_money_rejects_non_numbers(value):
    with pytest.raises(RowError):
        read_money({"BilledCost": value}, "BilledCost")


@pytest.mark.parametrize(
    "value",
    ["2024-09-01T00:00:00Z", "2024-09-01 00:00:00", "2024-09-01T02:00:00+02:00"],
)
def test_read_timestamp_formats(value):
    moment = read_timestamp({"ChargePeriodStart": value}, "ChargePeriodStart")
    assert moment == datetime(2024, 9, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cell", "tags", "valid"),
    [
        ("NULL", {}, True),
        ("", {}, True),
        ('{"env": "prod", " env": "dev"}', {"env": "prod"}, True),
        ('{"size": 3, "owner": null}', {"size": "3", "owner": ""}, True),
        ('{"env": "prod"', {}, False),
        ('["env", "prod"]', {}, False),
        ("42", {}, False),
    ],
)
def test_read_tags_cases(cell, tags, valid):
    assert read_tags(cell) == (tags, valid)
