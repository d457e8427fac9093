"""End to end: a fresh project, `jarvisctl up`, invokes through the real gateway,
a token refresh, then `jarvisctl down` leaving nothing behind."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psutil
import pytest

from conftest import FOCUS_SAMPLE, PORT_KEYS, ROOT, free_port

# `up` waits for the gateway's cold start (about 8 s alone, more on a loaded
# machine); this bounds the whole command.
UP_TIMEOUT = 240
COMMAND_TIMEOUT = 120
TICKET_ID = re.compile(r"\*\*(\d{5,})\*\*")


def run_cli(
    env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jarvisctl", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def provider_totals(path: Path) -> dict[tuple[str, str], str]:
    """Sum BilledCost per provider and currency, rounded half up to cents."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            cost = row["BilledCost"].strip()
            if cost in ("", "NULL"):
                continue
            totals[(row["ProviderName"], row["BillingCurrency"])] += Decimal(cost)
    cent = Decimal("0.01")
    return {
        key: str(value.quantize(cent, rounding=ROUND_HALF_UP))
        for key, value in totals.items()
    }


def alive(pid: int) -> bool:
    """True for a live process; a zombie waiting for its parent counts as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def listening_pids(ports: list[int]) -> dict[int, int | None]:
    listeners = {}
    for connection in psutil.net_connections(kind="inet"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port in ports:
            listeners[connection.laddr.port] = connection.pid
    return listeners


@pytest.fixture
def fresh_project(tmp_path: Path):
    """A copy of the checkout's configuration with no `.env`, on free ports."""
    directory = tmp_path / "stack"
    directory.mkdir()
    shutil.copy(ROOT / ".env.template", directory / ".env.template")
    shutil.copy(ROOT / "litellm_config.yaml", directory / "litellm_config.yaml")
    env = dict(os.environ)
    for key in ("JWT_TOKEN", "JWT_SECRET_KEY", "LITELLM_MASTER_KEY", "NO_COLOR"):
        env.pop(key, None)
    env.update({key: str(free_port()) for key in PORT_KEYS.values()})
    env.update(
        JARVIS_PROJECT_DIR=str(directory),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        FINOPS_DATA=str(FOCUS_SAMPLE) if FOCUS_SAMPLE.exists() else "",
        NO_COLOR="1",
    )
    yield directory, env
    # Whatever the test did, leave no stack running.
    run_cli(env, "down", timeout=COMMAND_TIMEOUT)


def test_stack_lifecycle_through_gateway(fresh_project) -> None:
    directory, env = fresh_project
    ports = [int(env[key]) for key in PORT_KEYS.values()]

    up = run_cli(env, "up", timeout=UP_TIMEOUT)
    assert up.returncode == 0, up.stdout + up.stderr
    assert (directory / ".env").exists()
    status = run_cli(env, "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    rows = json.loads(status.stdout)
    assert {row["name"] for row in rows} == set(PORT_KEYS)
    assert all(row["state"] == "running" for row in rows), rows
    pids = [row["pid"] for row in rows]
    supervisor_pid = json.loads((directory / ".jarvis" / "state.json").read_text())[
        "supervisor"
    ]["pid"]

    created = run_cli(env, "invoke", "tickets", "create VPN ticket", "--json")
    assert created.returncode == 0, created.stdout + created.stderr
    created_result = json.loads(created.stdout)
    assert created_result["via"] == "gateway"
    assert created_result["state"] == "completed"
    ticket_id = TICKET_ID.search(created_result["text"]).group(1)
    assert int(created_result["records"][0]["id"]) == int(ticket_id)

    listed = run_cli(env, "invoke", "tickets", "show my tickets", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    listed_ids = [int(record["id"]) for record in json.loads(listed.stdout)["records"]]
    assert int(ticket_id) in listed_ids

    if FOCUS_SAMPLE.exists():
        costs = run_cli(env, "invoke", "finops", "total cloud cost by provider", "--json")
        assert costs.returncode == 0, costs.stdout + costs.stderr
        records = json.loads(costs.stdout)["records"]
        answered = {
            (record["provider"], record["currency"]): record["billed_cost"]
            for record in records
        }
        assert answered == provider_totals(FOCUS_SAMPLE)

    refreshed = run_cli(env, "token", "refresh")
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert "admin" in refreshed.stdout
    again = run_cli(env, "invoke", "tickets", "show my tickets", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    again_ids = [int(record["id"]) for record in json.loads(again.stdout)["records"]]
    assert int(ticket_id) in again_ids

    down = run_cli(env, "down", timeout=COMMAND_TIMEOUT)
    assert down.returncode == 0, down.stdout + down.stderr
    assert listening_pids(ports) == {}
    assert [pid for pid in pids if alive(pid)] == []
    assert not alive(supervisor_pid)
