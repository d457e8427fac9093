"""The bench's report: machine facts, target checks and Markdown tables."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from measures import AGENTS, INVOKE_TEXT
from project import ROOT
from summary import Check, Spread, checks_table, seconds_row, table

# Targets on a 2-core machine.
STATUS_LIMIT = 0.3
HELP_LIMIT = 0.2
UP_RATIO_LIMIT = 1.2
DOWN_LIMIT = 2.0
RECOVERY_EXTRA_LIMIT = 1.0
INVOKE_OVERHEAD_LIMIT = 0.5
THROUGHPUT_RATIO_LIMIT = 0.8
SUPERVISOR_RSS_LIMIT_MB = 50.0
SUPERVISOR_CPU_LIMIT = 1.0



def machine() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    ).stdout.strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "load_average": os.getloadavg(),
    }


def complete(results: dict[str, Any], name: str) -> Any:
    """Return a measurement only when every one of its series has values."""
    value = results.get(name)
    if not value:
        return None
    series = value.values() if name != "recovery" else [
        *value["recovery"].values(), *value["boot"].values()
    ]
    return value if all(series) else None


def check_all(results: dict[str, Any]) -> list[Check]:
    """Check every complete measurement against its target."""
    checks = []
    cli_times = complete(results, "cli")
    if cli_times:
        status = Spread.of(cli_times["status"]).median
        help_ = Spread.of(cli_times["help"]).median
        checks.append(Check.at_most("status", status, STATUS_LIMIT, "s"))
        checks.append(Check.at_most("--help", help_, HELP_LIMIT, "s"))

    cycles = complete(results, "cycles")
    if cycles:
        checks += lifecycle_checks(cycles)
    recovery = complete(results, "recovery")
    if recovery:
        checks += recovery_checks(recovery)

    invoke = complete(results, "invoke")
    if invoke:
        command = Spread.of(invoke["cli"]).median
        raw = Spread.of(invoke["raw_gateway"]).median
        note = f"invoke {command:.3f} s, raw {raw:.3f} s"
        checks.append(Check.at_most(
            "invoke over raw call via gateway", command - raw,
            INVOKE_OVERHEAD_LIMIT, "s", note,
        ))

    checks += throughput_checks(results.get("load") or [])
    idle = results.get("idle")
    if idle:
        rss_mb = idle["supervisor_rss_bytes"] / 2**20
        cpu = idle["supervisor_cpu_percent"]
        checks.append(Check.at_most(
            "idle supervisor RSS", rss_mb, SUPERVISOR_RSS_LIMIT_MB, "MB"
        ))
        checks.append(Check.at_most(
            "idle supervisor CPU", cpu, SUPERVISOR_CPU_LIMIT, "%"
        ))
    return checks


def lifecycle_checks(cycles: dict[str, list[float]]) -> list[Check]:
    up = Spread.of(cycles["up"]).median
    gateway = Spread.of(cycles["gateway_alone"]).median
    down = Spread.of(cycles["down_done"]).median
    return [
        Check.at_most(
            "up / gateway cold start", up / gateway, UP_RATIO_LIMIT, "x",
            f"up {up:.2f} s, gateway {gateway:.2f} s",
        ),
        Check.at_most("down (exit and ports free)", down, DOWN_LIMIT, "s"),
    ]


def recovery_checks(recovery: dict[str, dict[str, list[float]]]) -> list[Check]:
    checks = []
    for agent in AGENTS:
        back = Spread.of(recovery["recovery"][agent]).median
        boot = Spread.of(recovery["boot"][agent]).median
        checks.append(Check.at_most(
            f"{agent} healthy after kill -9", back, boot + RECOVERY_EXTRA_LIMIT,
            "s", f"own boot {boot:.2f} s",
        ))
    return checks


def throughput_checks(load: list[dict[str, Any]]) -> list[Check]:
    """Compare each agent's direct throughput with the minimal agent's mean."""
    floor_runs: dict[int, list[float]] = {}
    for row in load:
        if row["label"] == "minimal direct":
            floor_runs.setdefault(row["concurrency"], []).append(row["throughput"])
    checks = []
    for row in load:
        label = row["label"]
        if not label.endswith(" direct") or label == "minimal direct":
            continue
        runs = floor_runs[row["concurrency"]]
        base = sum(runs) / len(runs)
        checks.append(Check.at_least(
            f"{label} c={row['concurrency']} / minimal", row["throughput"] / base,
            THROUGHPUT_RATIO_LIMIT, "x",
            f"{row['throughput']:.1f} vs {base:.1f} req/s",
        ))
    return checks


def cpu_cell(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def render(results: dict[str, Any]) -> str:
    """Render every table of the results as Markdown."""
    parts = []
    header = ["measure", "median", "min", "max", "runs"]
    if complete(results, "cli"):
        rows = [
            seconds_row(f"jarvisctl {name} (s)", Spread.of(values))
            for name, values in results["cli"].items()
        ]
        parts.append("### CLI start-up\n\n" + table(header, rows))
    if complete(results, "cycles"):
        rows = [
            seconds_row(f"{name} (s)", Spread.of(values))
            for name, values in results["cycles"].items()
        ]
        parts.append("### Stack lifecycle\n\n" + table(header, rows))
    if complete(results, "recovery"):
        parts.append("### Recovery after kill -9\n\n" + recovery_table(results))
    if complete(results, "invoke"):
        parts.append("### One message\n\n" + invoke_table(results))

    if results.get("load"):
        parts.append("### Throughput\n\n" + load_table(results["load"]))
    if results.get("idle"):
        parts.append("### Memory and idle CPU\n\n" + idle_table(results["idle"]))
    checks = [Check(**check) for check in results.get("checks", [])]
    if checks:
        parts.append("### Targets\n\n" + checks_table(checks))
    return "\n\n".join(parts) + "\n"


def recovery_table(results: dict[str, Any]) -> str:
    rows = []
    for agent in AGENTS:
        back = Spread.of(results["recovery"]["recovery"][agent])
        boot = Spread.of(results["recovery"]["boot"][agent])
        rows.append(seconds_row(f"{agent} kill -9 to healthy (s)", back))
        rows.append(seconds_row(f"{agent} standalone boot (s)", boot))
    return table(["measure", "median", "min", "max", "runs"], rows)


def invoke_table(results: dict[str, Any]) -> str:
    labels = {
        "cli": f'jarvisctl invoke tickets "{INVOKE_TEXT}"',
        "raw_gateway": "httpx message/send via gateway",
        "raw_direct": "httpx message/send to agent",
    }
    rows = [
        seconds_row(f"{labels[name]} (ms)", Spread.of(values), 1000)
        for name, values in results["invoke"].items()
    ]
    return table(["measure", "median", "min", "max", "runs"], rows)


def load_table(load: list[dict[str, Any]]) -> str:
    header = [
        "target", "request", "clients", "req/s", "p50 ms", "p95 ms",
        "server CPU ms/req", "requests", "errors",
    ]
    rows = [
        [
            row["label"],
            f'"{row["text"]}"',
            str(row["concurrency"]),
            f"{row['throughput']:.1f}",
            f"{row['p50_ms'] or 0:.1f}",
            f"{row['p95_ms'] or 0:.1f}",
            cpu_cell(row["server_cpu_ms"]),
            str(row["requests"]),
            str(row["errors"]),
        ]
        for row in load
    ]
    return table(header, rows)


def idle_table(idle: dict[str, Any]) -> str:
    supervisor_mb = idle["supervisor_rss_bytes"] / 2**20
    rows = [
        ["supervisor (idle)", f"{supervisor_mb:.1f}",
         f"{idle['supervisor_cpu_percent']:.2f}"]
    ]
    rows += [
        [name, f"{rss / 2**20:.1f}", ""]
        for name, rss in idle["service_rss_bytes"].items()
    ]
    return table(["process", "RSS MB (with children)", "CPU %"], rows)
