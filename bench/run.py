"""Benchmark the jarvisctl stack: CLI latency, lifecycle, recovery and load.

Run from the repository root:

    .venv/bin/python bench/run.py            # full run, about 5-6 minutes
    .venv/bin/python bench/run.py --quick    # fewer repeats, about 2 minutes
    .venv/bin/python bench/run.py --repeat 5

The bench builds a throw-away project directory with free loopback ports,
drives the real `jarvisctl` console script as a subprocess, prints Markdown
tables with the targets met or missed, and writes the raw numbers to
`bench/results/bench-<time>.json`. Every process it starts is stopped by pid
before it exits, even after a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

# Every process the bench starts inherits this, so the LiteLLM proxy (spawned
# directly or by the supervisor) never fetches its model cost map online.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from measures import (
    Plan,
    RecoveryRounds,
    measure_cli,
    measure_cycles,
    measure_idle,
    measure_invoke,
    measure_load,
)
from project import ROOT, Project, cli, cli_ok, make_project, stop
from report import check_all, machine, render
from summary import to_json

RESULTS_DIR = ROOT / "bench" / "results"




def run(plan: Plan, results: dict[str, Any], project: Project) -> None:
    print(f"Project {project.directory}, ports {project.ports}", flush=True)
    print("Measuring up, down and the gateway alone", flush=True)
    results["cycles"] = measure_cycles(project, plan.cycles)

    cli_ok(project, "up")
    print("Measuring --help and status", flush=True)
    results["cli"] = measure_cli(project, plan.cli_runs)
    rounds = RecoveryRounds(project)
    results["recovery"] = {"recovery": rounds.recovery, "boot": rounds.boot}
    rounds.run_round()
    print("Measuring invoke", flush=True)
    results["invoke"] = measure_invoke(project, plan)
    if plan.recovery_rounds > 1:
        rounds.run_round()
    print("Measuring throughput", flush=True)
    results["load"] = [to_json(row) for row in measure_load(project, plan)]
    for row in results["load"]:
        row.pop("latencies_ms")
    if plan.recovery_rounds > 2:
        rounds.run_round()
    print("Measuring the idle supervisor", flush=True)
    results["idle"] = measure_idle(project, plan.idle_seconds)
    for _ in range(plan.recovery_rounds - 3):
        rounds.run_round()


def clean_up(project: Project) -> None:
    """Bring the stack down and stop, by pid, every process the bench started."""
    try:
        cli(project, "down", timeout=60)
    except (subprocess.TimeoutExpired, OSError) as error:
        print(f"jarvisctl down failed: {error}", file=sys.stderr)
    for child in project.started:
        stop(child)


def parse_args() -> Plan:
    parser = argparse.ArgumentParser(description="Benchmark the jarvisctl stack.")
    parser.add_argument(
        "--quick", action="store_true", help="Run each measure one to five times."
    )
    parser.add_argument(
        "--repeat", type=int, metavar="N", help="Repeat every measure N times."
    )
    args = parser.parse_args()
    if args.repeat is not None and args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    if args.repeat:
        return Plan.repeated(args.repeat)
    return Plan.quick() if args.quick else Plan()


def main() -> int:
    plan = parse_args()
    project = make_project()
    results: dict[str, Any] = {"machine": machine(), "plan": to_json(plan)}
    started = time.perf_counter()
    failed = False
    try:
        run(plan, results, project)
    except (RuntimeError, subprocess.TimeoutExpired, OSError, KeyError) as error:
        failed = True
        print(f"Benchmark failed: {error}", file=sys.stderr)
    finally:
        clean_up(project)
    results["seconds"] = time.perf_counter() - started
    results["machine"]["load_average_end"] = os.getloadavg()
    results["checks"] = to_json(check_all(results))

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = RESULTS_DIR / f"bench-{stamp}.json"
    output.write_text(json.dumps(results, indent=2))
    report = render(results)
    (RESULTS_DIR / f"bench-{stamp}.md").write_text(report)
    print()
    print(report)
    missed = [check["name"] for check in results["checks"] if not check["met"]]
    met = len(results["checks"]) - len(missed)
    print(f"Met {met} of {len(results['checks'])} targets")
    if missed:
        print(f"Missed: {', '.join(missed)}")
    print(f"Wrote {output} in {results['seconds']:.0f} s")
    if failed:
        print(f"Kept {project.directory} for its logs", file=sys.stderr)
        return 1
    shutil.rmtree(project.directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

