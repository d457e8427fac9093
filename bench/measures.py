"""The measurements: CLI wall times, lifecycle, recovery, one message, load, idle.

Each function drives the real stack of a `Project` and returns raw seconds or
a dict of them. The report turns them into medians and target checks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import psutil

from loadgen import LoadResult, Target, run_load, timed_call
from project import (
    PORT_KEYS,
    ROOT,
    Project,
    cli_ok,
    free_port,
    jarvisctl_argv,
    http_ok,
    port_free,
    service_launch,
    spawn,
    status_rows,
    stop,
    wait_until,
)

from jarvisctl.process import A2A_TRACING_ENV

MINIMAL_AGENT = ROOT / "bench" / "minimal_agent.py"
AGENTS = ("tickets", "finops", "oxygen")
# Read-only request per agent for the load test, so the data does not grow.
LOAD_TEXTS = {
    "tickets": "list my tickets",
    "finops": "top 5 services",
    "oxygen": "show my courses",
    "minimal": "anything",
}
INVOKE_TEXT = "show my tickets"
CONCURRENCY_LEVELS = (1, 8, 32)
# Interval of the health polls that time a recovery after kill -9.
RECOVERY_POLL = 0.02
# The supervisor resets a service's restart backoff after 30 s of health and
# probes every 2 s, so a kill spaced this far from the last one gets the
# initial 0.5 s backoff instead of a doubled one.
RECOVERY_SPACING = 34.0
# Generous bounds, far above what a healthy 2-core machine needs.
GATEWAY_TIMEOUT = 120.0
BOOT_TIMEOUT = 60.0
PORT_FREE_TIMEOUT = 30.0
# Seconds the supervisor sits idle before and during its CPU and RSS sampling.
IDLE_SETTLE = 3.0



@dataclass
class Plan:
    """How many times each measurement repeats."""

    cli_runs: int = 15
    cycles: int = 3
    recovery_rounds: int = 3
    invoke_runs: int = 10
    raw_runs: int = 20
    load_seconds: float = 4.0
    load_warmup: float = 1.0
    idle_seconds: float = 10.0

    @classmethod
    def quick(cls) -> Plan:
        return cls(5, 1, 1, 3, 5, 1.5, 0.5, 5.0)

    @classmethod
    def repeated(cls, count: int) -> Plan:
        return cls(count, count, count, count, 2 * count)


def measure_cli(project: Project, runs: int) -> dict[str, list[float]]:
    """Time `jarvisctl --help` and `jarvisctl status` on a running stack."""
    times: dict[str, list[float]] = {"help": [], "status": []}
    for _ in range(runs):
        times["help"].append(cli_ok(project, "--help").seconds)
        times["status"].append(cli_ok(project, "status").seconds)
    return times


def measure_gateway_alone(project: Project) -> float:
    """Time the proxy's cold start, spawned directly, to /health/readiness."""
    argv, env = service_launch(project, "gateway")
    readiness = project.url("gateway") + "/health/readiness"
    started = time.perf_counter()
    child = spawn(project, argv, env, "bench-gateway.log")
    try:
        ready = wait_until(
            lambda: child.poll() is None and http_ok(readiness), GATEWAY_TIMEOUT, 0.05
        )
        elapsed = time.perf_counter() - started
        if not ready:
            raise RuntimeError(
                "the gateway alone did not become ready: see bench-gateway.log"
            )
    finally:
        stop(child)
    wait_until(lambda: port_free(project.ports["gateway"]), PORT_FREE_TIMEOUT, 0.05)
    return elapsed


def measure_down(project: Project) -> dict[str, float]:
    """Time `jarvisctl down`: its exit, every port free, every process gone.

    A zombie counts as gone because it keeps no port or memory, and the
    parent of a detached supervisor (often pid 1) may reap it late.
    """
    pids = [row["pid"] for row in status_rows(project).values() if row["pid"]]
    pids.append(project.state()["supervisor"]["pid"])
    ports = list(project.ports.values())
    started = time.perf_counter()
    command = subprocess.Popen(
        [*jarvisctl_argv(), "down"],
        env=project.cli_env(),
        cwd=project.directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if not wait_until(lambda: all(map(port_free, ports)), PORT_FREE_TIMEOUT, 0.02):
        stop(command)
        raise RuntimeError("ports still in use after jarvisctl down")
    freed = time.perf_counter() - started
    code = command.wait(timeout=PORT_FREE_TIMEOUT)
    exited = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"jarvisctl down exited {code}")
    if not wait_until(lambda: not any(map(alive, pids)), PORT_FREE_TIMEOUT, 0.02):
        raise RuntimeError("processes still running after jarvisctl down")
    return {
        "command": exited,
        "ports_free": freed,
        "done": max(exited, freed),
        "processes_gone": time.perf_counter() - started,
    }


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def measure_cycles(project: Project, cycles: int) -> dict[str, list[float]]:
    """Time up, down and the gateway's own cold start, interleaved."""
    times: dict[str, list[float]] = {
        "up": [],
        "down_command": [],
        "down_ports_free": [],
        "down_done": [],
        "down_processes_gone": [],
        "gateway_alone": [],
    }
    for cycle in range(cycles):
        times["up"].append(cli_ok(project, "up").seconds)
        down = measure_down(project)
        for key, value in down.items():
            times[f"down_{key}"].append(value)
        # The first `up` wrote JWT_TOKEN, which the gateway config needs.
        times["gateway_alone"].append(measure_gateway_alone(project))
        print(
            f"  cycle {cycle + 1}: up {times['up'][-1]:.2f} s, "
            f"down {down['done']:.2f} s, "
            f"gateway alone {times['gateway_alone'][-1]:.2f} s",
            flush=True,
        )
    return times


def measure_boot(project: Project, agent: str) -> float:
    """Time a standalone start of `agent` on a spare port until /health is 200."""
    argv, env = service_launch(project, agent)
    port = free_port()
    env[PORT_KEYS[agent]] = str(port)
    started = time.perf_counter()
    child = spawn(project, argv, env, f"bench-{agent}.log")
    try:
        url = f"http://127.0.0.1:{port}/health"
        up = wait_until(
            lambda: child.poll() is None and http_ok(url, 0.5),
            BOOT_TIMEOUT,
            RECOVERY_POLL,
        )
        elapsed = time.perf_counter() - started
        if not up:
            raise RuntimeError(
                f"standalone {agent} did not start: see bench-{agent}.log"
            )
    finally:
        stop(child)
    return elapsed


def measure_recovery(project: Project, agent: str) -> float:
    """Kill -9 `agent` and time until its /health answers 200 again."""
    pid = status_rows(project)[agent]["pid"]
    url = project.url(agent) + "/health"
    started = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    # A 200 counts only after the killed process stopped answering.
    if not wait_until(lambda: not http_ok(url, 0.2), 5.0, RECOVERY_POLL):
        raise RuntimeError(f"{agent} (pid {pid}) still answered after kill -9")
    if not wait_until(lambda: http_ok(url, 0.5), BOOT_TIMEOUT, RECOVERY_POLL):
        raise RuntimeError(f"{agent} did not come back after kill -9")
    return time.perf_counter() - started


class RecoveryRounds:
    """Kill each agent once per round, spaced so the backoff starts fresh."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.recovery: dict[str, list[float]] = {agent: [] for agent in AGENTS}
        self.boot: dict[str, list[float]] = {agent: [] for agent in AGENTS}
        self.last_kill: dict[str, float] = {}

    def run_round(self) -> None:
        for agent in AGENTS:
            since = time.monotonic() - self.last_kill.get(agent, -RECOVERY_SPACING)
            if since < RECOVERY_SPACING:
                time.sleep(RECOVERY_SPACING - since)
            self.recovery[agent].append(measure_recovery(self.project, agent))
            self.last_kill[agent] = time.monotonic()
        for agent in AGENTS:
            self.boot[agent].append(measure_boot(self.project, agent))
        line = ", ".join(
            f"{agent} {self.recovery[agent][-1]:.2f} s "
            f"(boot {self.boot[agent][-1]:.2f})"
            for agent in AGENTS
        )
        print(f"  recovery: {line}", flush=True)


def gateway_target(
    project: Project, agent: str, text: str, pid: int | None = None
) -> Target:
    key = project.env_values()["LITELLM_MASTER_KEY"]
    url = f"{project.url('gateway')}/a2a/{agent}"
    return Target(f"{agent} via gateway", url, key, text, pid)


def direct_target(
    project: Project, agent: str, text: str, pid: int | None = None
) -> Target:
    token = project.env_values()["JWT_TOKEN"]
    return Target(f"{agent} direct", project.url(agent) + "/", token, text, pid)


def measure_invoke(project: Project, plan: Plan) -> dict[str, list[float]]:
    """Time `jarvisctl invoke` beside bare httpx calls via the gateway and direct."""
    times: dict[str, list[float]] = {"cli": [], "raw_gateway": [], "raw_direct": []}
    via_gateway = gateway_target(project, "tickets", INVOKE_TEXT)
    direct = direct_target(project, "tickets", INVOKE_TEXT)
    for _ in range(plan.invoke_runs):
        times["cli"].append(cli_ok(project, "invoke", "tickets", INVOKE_TEXT).seconds)
    for _ in range(plan.raw_runs):
        times["raw_gateway"].append(timed_call(via_gateway))
        times["raw_direct"].append(timed_call(direct))
    return times


def start_minimal_agent(project: Project) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [sys.executable, str(MINIMAL_AGENT), "--port", str(port)]
    # The floor runs with the SDK's tracing switched as the stack's agents run
    # it (see jarvisctl.process.launch_command), so the two compare like for like.
    env = project.cli_env()
    env.setdefault(A2A_TRACING_ENV, "false")
    child = spawn(project, argv, env, "bench-minimal.log")
    url = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: http_ok(url + "/health"), BOOT_TIMEOUT, 0.05):
        raise RuntimeError("the minimal agent did not start; see bench-minimal.log")
    return child, url + "/"


def measure_load(project: Project, plan: Plan) -> list[LoadResult]:
    """Load each agent direct and via the gateway, and the minimal agent.

    The minimal agent runs first and last at each level, so the floor is the
    mean of two runs and a burst of load from elsewhere skews it less.
    """
    minimal, minimal_url = start_minimal_agent(project)
    rows = status_rows(project)
    floor = Target(
        "minimal direct", minimal_url, "none", LOAD_TEXTS["minimal"], minimal.pid
    )
    targets = [floor]
    for agent in AGENTS:
        pid = rows[agent]["pid"]
        targets.append(direct_target(project, agent, LOAD_TEXTS[agent], pid))
        # The gateway's CPU per request is the cost of the extra hop.
        gateway_pid = rows["gateway"]["pid"]
        targets.append(gateway_target(project, agent, LOAD_TEXTS[agent], gateway_pid))
    targets.append(floor)
    results = []
    try:
        for concurrency in CONCURRENCY_LEVELS:
            for target in targets:
                result = run_load(
                    target, concurrency, plan.load_seconds, plan.load_warmup
                )
                results.append(result)
                print(f"  {target.label:<20} c={concurrency:<3} "
                      f"{result.throughput:7.1f} req/s  "
                      f"p50 {result.p50_ms or 0:7.1f} ms"
                      f"  errors {result.errors}", flush=True)
    finally:
        stop(minimal)
    return results


def tree_rss(pid: int) -> int:
    """RSS of a process and all its children, in bytes."""
    process = psutil.Process(pid)
    members = [process, *process.children(recursive=True)]
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


def measure_idle(project: Project, seconds: float) -> dict[str, Any]:
    """Sample the idle supervisor's CPU and RSS, and each service's RSS."""
    time.sleep(IDLE_SETTLE)
    supervisor = psutil.Process(project.state()["supervisor"]["pid"])
    before = supervisor.cpu_times()
    rss = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        rss.append(supervisor.memory_info().rss)
        time.sleep(0.5)
    after = supervisor.cpu_times()
    wall = time.perf_counter() - started
    busy = (after.user - before.user) + (after.system - before.system)
    services = {
        name: tree_rss(row["pid"])
        for name, row in status_rows(project).items()
        if row["pid"]
    }
    return {
        "supervisor_cpu_percent": 100 * busy / wall,
        "supervisor_rss_bytes": sorted(rss)[len(rss) // 2],
        "service_rss_bytes": services,
        "seconds": wall,
    }


