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
