"""The bench's throw-away project and the processes it runs.

A project is a temp directory with copies of `.env.template` and
`litellm_config.yaml` and a `.env` on free loopback ports. Every process the
bench spawns itself is remembered so it can be stopped by pid.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PORT_KEYS = {
    "auth": "AUTH_SERVICE_PORT",
    "registry": "REGISTRY_SERVICE_PORT",
    "tickets": "TICKETS_AGENT_PORT",
    "finops": "FINOPS_AGENT_PORT",
    "oxygen": "OXYGEN_AGENT_PORT",
    "gateway": "LITELLM_GATEWAY_PORT",
}
# Seconds `jarvisctl up` may take; far above the ~15 s a 2-core machine needs.
UP_TIMEOUT = 180.0


@dataclass
class Project:
    """The bench's project directory, its `.env` and the processes it started."""

    directory: Path
    ports: dict[str, int]
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        return self.directory / ".jarvis"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def env_values(self) -> dict[str, str]:
        from jarvisctl.envfile import read_env

        return read_env(self.directory / ".env")

    def cli_env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in PORT_KEYS.values() and not key.startswith("JARVIS_")
        }
        env.update(JARVIS_PROJECT_DIR=str(self.directory), NO_COLOR="1")
        return env

    def state(self) -> dict[str, Any]:
        return json.loads((self.run_dir / "state.json").read_text())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_project() -> Project:
    """Copy the template and gateway config into a temp dir with free ports."""
    directory = Path(tempfile.mkdtemp(prefix="jarvis-bench-"))
    shutil.copy(ROOT / ".env.template", directory / ".env.template")
    shutil.copy(ROOT / "litellm_config.yaml", directory / "litellm_config.yaml")
    ports = {service: free_port() for service in PORT_KEYS}
    lines = []
    for line in (ROOT / ".env.template").read_text().splitlines():
        key = line.split("=", 1)[0]
        service = next((name for name, k in PORT_KEYS.items() if k == key), None)
        lines.append(f"{key}={ports[service]}" if service else line)
    env_file = directory / ".env"
    env_file.write_text("\n".join(lines) + "\n")
    env_file.chmod(0o600)
    return Project(directory, ports)


def jarvisctl_argv() -> list[str]:
    script = Path(sys.executable).parent / "jarvisctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "jarvisctl"]


@dataclass
class CliRun:
    """Wall time, exit code and output of one `jarvisctl` subprocess."""

    seconds: float
    code: int
    stdout: str
    stderr: str


def cli(project: Project, *args: str, timeout: float = UP_TIMEOUT) -> CliRun:
    started = time.perf_counter()
    done = subprocess.run(
        [*jarvisctl_argv(), *args],
        env=project.cli_env(),
        cwd=project.directory,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    elapsed = time.perf_counter() - started
    return CliRun(elapsed, done.returncode, done.stdout, done.stderr)


def cli_ok(project: Project, *args: str, timeout: float = UP_TIMEOUT) -> CliRun:
    run = cli(project, *args, timeout=timeout)
    if run.code != 0:
        tail = (run.stdout + run.stderr)[-2000:]
        raise RuntimeError(f"jarvisctl {' '.join(args)} exited {run.code}:\n{tail}")
    return run


def status_rows(project: Project) -> dict[str, dict[str, Any]]:
    rows = json.loads(cli_ok(project, "status", "--json").stdout)
    return {row["name"]: row for row in rows}


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, interval: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return False


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def spawn(project: Project, argv: list[str], env: dict[str, str], log: str) -> (
    subprocess.Popen[bytes]
):
    """Start a process in its own session and remember it for clean-up."""
    with open(project.directory / log, "ab") as output:
        child = subprocess.Popen(
            argv,
            cwd=project.directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    project.started.append(child)
    return child


def stop(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left after 10 s."""
    if child.poll() is not None:
        return
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=5)
    except ProcessLookupError:
        pass


def service_launch(project: Project, service: str) -> tuple[list[str], dict[str, str]]:
    """Return the argv and environment the supervisor would use for `service`."""
    from jarvisctl.config import load_settings, service_spec
    from jarvisctl.process import launch_command

    settings = load_settings(project.directory)
    return launch_command(settings, service_spec(service))


