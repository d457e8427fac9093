"""Fixtures that run the real services as subprocesses on free loopback ports."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
FOCUS_SAMPLE = ROOT.parent / "shared" / "data" / "focus_sample.csv"
# Cold start of a FastAPI service on a loaded 2-core machine stays well below this.
SERVICE_START_TIMEOUT = 30.0
PORT_KEYS = {
    "auth": "AUTH_SERVICE_PORT",
    "registry": "REGISTRY_SERVICE_PORT",
    "tickets": "TICKETS_AGENT_PORT",
    "finops": "FINOPS_AGENT_PORT",
    "oxygen": "OXYGEN_AGENT_PORT",
    "gateway": "LITELLM_GATEWAY_PORT",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningService:
    """A service process started by a test."""

    name: str
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class Project:
    """A throw-away project directory with its own `.env` and free ports."""

    directory: Path
    env: dict[str, str]

    def port(self, service: str) -> int:
        return int(self.env[PORT_KEYS[service]])

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service)}"

    def process_env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env.update(extra)
        return env

    def start(self, service: str, **extra_env: str) -> RunningService:
        """Start `python -m services.<service>` and wait for GET /health."""
        log_path = self.directory / f"{service}.test.log"
        log = open(log_path, "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            cwd=ROOT,
            env=self.process_env(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        running = RunningService(service, self.url(service), process, log_path)
        deadline = time.monotonic() + SERVICE_START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"{service} exited: {running.log()[-2000:]}")
            try:
                if httpx.get(f"{running.url}/health", timeout=1).status_code == 200:
                    return running
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        running.stop()
        raise AssertionError(f"{service} not healthy in time: {running.log()[-2000:]}")


def make_project(directory: Path) -> Project:
    env = {key: str(free_port()) for key in PORT_KEYS.values()}
    env.update(
        JARVIS_PROJECT_DIR=str(directory),
        JARVIS_RUN_DIR=str(directory / ".jarvis"),
        JWT_SECRET_KEY=secrets.token_hex(32),
        JARVIS_ADMIN_PASSWORD="admin-test-password",
        JARVIS_DEMO_PASSWORD="demo-test-password",
        LITELLM_MASTER_KEY="sk-test-" + secrets.token_hex(16),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        FINOPS_DATA="",
        JWT_TOKEN="",
    )
    return Project(directory=directory, env=env)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)


@pytest.fixture
def services(project: Project) -> Iterator[Callable[..., RunningService]]:
    """Start services in `project`; every one started is stopped afterwards."""
    started: list[RunningService] = []

    def start(service: str, **extra_env: str) -> RunningService:
        running = project.start(service, **extra_env)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        running.stop()


def login(auth_url: str, username: str, password: str) -> str:
    response = httpx.post(
        f"{auth_url}/auth/login",
        json={"username": username, "password": password},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def agent_token(project: Project, username: str, role: str = "developer") -> str:
    """Mint a valid JWT for `username` with the project's secret."""
    from services.common.tokens import issue_token

    return issue_token(project.env["JWT_SECRET_KEY"], username, role, 600)


def ask_agent(url: str, text: str, headers: dict[str, str]) -> dict:
    """Send one A2A 1.0 SendMessage over JSON-RPC and return the response body."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {
            "message": {
                "messageId": secrets.token_hex(8),
                "role": "ROLE_USER",
                "parts": [{"text": text}],
            }
        },
    }
    response = httpx.post(
        f"{url}/", json=body, headers={"A2A-Version": "1.0", **headers}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()


def agent_answer(url: str, token: str, text: str) -> tuple[str, dict]:
    """Return the answer text and the records data of a completed agent task."""
    reply = ask_agent(url, text, {"Authorization": f"Bearer {token}"})
    task = reply["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED", task["status"]
    artifacts = {artifact["name"]: artifact for artifact in task["artifacts"]}
    text_part = artifacts["answer"]["parts"][0]
    data_part = artifacts["records"]["parts"][0]
    return text_part["text"], data_part["data"]


# The proxy's cold start measured about 8-15 s with litellm 1.108 on 2 cores.
GATEWAY_START_TIMEOUT = 120.0


@dataclass
class GatewayStack:
    """Auth, registry, the three agents and the real LiteLLM proxy of one project."""

    project: Project
    gateway: RunningService
    services: dict[str, RunningService]

    @property
    def master_key(self) -> str:
        return self.project.env["LITELLM_MASTER_KEY"]


def write_env_file(project: Project, **extra: str) -> Path:
    """Write the project's settings to its `.env` (mode 0600)."""
    env_file = project.directory / ".env"
    values = {**project.env, **extra}
    env_file.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    env_file.chmod(0o600)
    return env_file


def start_gateway(project: Project) -> RunningService:
    """Start the proxy with the argv and environment jarvisctl would use."""
    from jarvisctl.config import Settings
    from jarvisctl.gateway import gateway_launch

    settings = Settings(project_dir=project.directory, env=dict(project.env))
    argv, extra_env = gateway_launch(settings)
    log_path = project.directory / "gateway.test.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv,
            cwd=project.directory,
            env=project.process_env(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = RunningService("gateway", project.url("gateway"), process, log_path)
    deadline = time.monotonic() + GATEWAY_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gateway exited: {running.log()[-3000:]}")
        try:
            ready = httpx.get(f"{running.url}/health/readiness", timeout=2)
            if ready.status_code == 200:
                return running
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    running.stop()
    raise AssertionError(f"gateway not ready in time: {running.log()[-3000:]}")


@pytest.fixture(scope="session")
def gateway_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    """One full stack behind the real proxy, shared by the tests of a session.

    The gateway's JWT_TOKEN is an admin token. Tests must not change the
    project's `.env`; they get a project of their own for that.
    """
    import shutil

    directory = tmp_path_factory.mktemp("gateway-stack")
    project = make_project(directory)
    shutil.copy(ROOT / "litellm_config.yaml", directory / "litellm_config.yaml")
    started: dict[str, RunningService] = {}
    try:
        for name in ("auth", "registry", "tickets", "finops", "oxygen"):
            started[name] = project.start(name)
        admin_token = login(
            project.url("auth"), "admin", project.env["JARVIS_ADMIN_PASSWORD"]
        )
        project.env["JWT_TOKEN"] = admin_token
        write_env_file(project)
        gateway = start_gateway(project)
        started["gateway"] = gateway
        yield GatewayStack(project=project, gateway=gateway, services=started)
    finally:
        for running in reversed(list(started.values())):
            running.stop()


@dataclass
class CliResult:
    """Exit code and output of one in-process `jarvisctl` run."""

    exit_code: int
    stdout: str
    stderr: str


def run_cli(
    args: list[str],
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stdin: str = "",
) -> CliResult:
    """Run `jarvisctl.cli.main()` with `args`, `env` overlaid and `stdin` as input."""
    import io

    from jarvisctl.cli import main

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "argv", ["jarvisctl", *args])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def find_records(value: Any) -> list[dict[str, Any]]:
    """Return the first `records` list found anywhere in a JSON-RPC reply."""
    if isinstance(value, dict):
        if isinstance(value.get("records"), list):
            return value["records"]
        children = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        return []
    for child in children:
        found = find_records(child)
        if found:
            return found
    return []
