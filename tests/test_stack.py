"""Tests of the stack orchestration that need no supervisor.

Status, down and ports read a state.json written here and look at real
processes: small HTTP servers started on free ports stand in for services.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from jarvisctl import stack
from jarvisctl.config import SERVICE_NAMES, Settings, load_settings, read_stop_timeout
from jarvisctl.envfile import read_env
from jarvisctl.errors import ServiceError, UsageError
from jarvisctl.ports import find_listener
from jarvisctl.status import ServiceStatus, all_healthy

ROOT = Path(__file__).resolve().parent.parent
# Seconds a stand-in server gets to open its port.
STANDIN_START_TIMEOUT = 15.0


@dataclass
class StandIn:
    """A `python -m http.server` that answers GET /health with 200."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def create_time(self) -> float:
        return psutil.Process(self.process.pid).create_time()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def start_standin(port: int, directory: Path, healthy: bool = True) -> StandIn:
    """Serve `directory` on `port`; a `health` file there makes /health return 200."""
    directory.mkdir(parents=True, exist_ok=True)
    if healthy:
        (directory / "health").write_text("ok\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    standin = StandIn(port, process)
    deadline = time.monotonic() + STANDIN_START_TIMEOUT
    while time.monotonic() < deadline:
        listener = find_listener(port)
        if listener is not None and listener.pid == process.pid:
            return standin
        if process.poll() is not None:
            raise AssertionError(f"stand-in on port {port} exited")
        time.sleep(0.05)
    standin.stop()
    raise AssertionError(f"stand-in on port {port} did not listen in time")


@pytest.fixture
def standins(tmp_path: Path) -> Iterator[Callable[..., StandIn]]:
    """Start stand-in servers; each is killed after the test."""
    started: list[StandIn] = []

    def start(port: int, healthy: bool = True) -> StandIn:
        standin = start_standin(port, tmp_path / f"www-{port}", healthy)
        started.append(standin)
        return standin

    yield start
    for standin in started:
        standin.stop()


@pytest.fixture
def settings(project, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in project.env.items():
        monkeypatch.setenv(key, value)
    return load_settings(project.directory)


def write_state(settings: Settings, services: dict[str, dict]) -> None:
    """Write a state.json as a supervisor that has since died would leave it."""
    entries = {}
    for name in SERVICE_NAMES:
        entry = {
            "name": name,
            "port": settings.port(name),
            "pid": None,
            "create_time": None,
            "state": "stopped",
            "desired": "running",
            "started_at": None,
            "restarts": 0,
            "last_exit": None,
            "health": None,
            "card": None,
        }
        entry.update(services.get(name, {}))
        entries[name] = entry
    state = {
        "version": 1,
        "updated_at": time.time(),
        "supervisor": None,
        "services": entries,
    }
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    (settings.run_dir / "state.json").write_text(json.dumps(state))


def running_entry(standin: StandIn) -> dict:
    return {
        "pid": standin.pid,
        "create_time": standin.create_time,
        "state": "running",
        "started_at": time.time() - 75,
        "restarts": 2,
    }


def row(statuses: list[ServiceStatus], name: str) -> ServiceStatus:
    return next(status for status in statuses if status.name == name)


TEMPLATE = """# Header comment.
FIRST=1
# Signing key.
JWT_SECRET_KEY=
LITELLM_MASTER_KEY=
LAST=last
"""


def test_init_creates_env_from_template(tmp_path: Path) -> None:
    (tmp_path / ".env.template").write_text(TEMPLATE)
    generated = stack.init_project(Settings(project_dir=tmp_path))
    values = read_env(tmp_path / ".env")
    assert generated == ["JWT_SECRET_KEY", "LITELLM_MASTER_KEY"]
    assert len(bytes.fromhex(values["JWT_SECRET_KEY"])) == 32
    assert values["LITELLM_MASTER_KEY"].startswith("sk-")
    assert len(values["LITELLM_MASTER_KEY"]) > 40


def test_init_sets_mode_0600(tmp_path: Path) -> None:
    (tmp_path / ".env.template").write_text(TEMPLATE)
    stack.init_project(Settings(project_dir=tmp_path))
    mode = stat.S_IMODE((tmp_path / ".env").stat().st_mode)
    assert mode == 0o600


def test_init_tightens_loose_mode(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("JWT_SECRET_KEY=a\nLITELLM_MASTER_KEY=b\n")
    env_file.chmod(0o644)
    stack.init_project(Settings(project_dir=tmp_path))
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_init_keeps_comments_and_order(tmp_path: Path) -> None:
    (tmp_path / ".env.template").write_text(TEMPLATE)
    stack.init_project(Settings(project_dir=tmp_path))
    lines = (tmp_path / ".env").read_text().splitlines()
    keys = [line.split("=")[0] for line in lines if "=" in line]
    assert lines[0] == "# Header comment."
    assert "# Signing key." in lines
    assert keys == ["FIRST", "JWT_SECRET_KEY", "LITELLM_MASTER_KEY", "LAST"]


def test_init_keeps_user_values(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("JWT_SECRET_KEY=mine-" + "x" * 40 + "\nLITELLM_MASTER_KEY=\n")
    generated = stack.init_project(Settings(project_dir=tmp_path))
    values = read_env(env_file)
    assert generated == ["LITELLM_MASTER_KEY"]
    assert values["JWT_SECRET_KEY"] == "mine-" + "x" * 40
    assert values["LITELLM_MASTER_KEY"].startswith("sk-")


def test_init_is_idempotent(tmp_path: Path) -> None:
    (tmp_path / ".env.template").write_text(TEMPLATE)
    settings = Settings(project_dir=tmp_path)
    stack.init_project(settings)
    first = (tmp_path / ".env").read_text()
    generated = stack.init_project(settings)
    assert generated == []
    assert (tmp_path / ".env").read_text() == first


def test_init_adds_no_other_template_keys(tmp_path: Path) -> None:
    (tmp_path / ".env.template").write_text(TEMPLATE)
    (tmp_path / ".env").write_text("FIRST=9\n")
    stack.init_project(Settings(project_dir=tmp_path))
    values = read_env(tmp_path / ".env")
    assert set(values) == {"FIRST", "JWT_SECRET_KEY", "LITELLM_MASTER_KEY"}


def test_init_without_template_rejects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing" / ".env.template"
    monkeypatch.setattr(stack, "PACKAGED_TEMPLATE", missing)
    with pytest.raises(UsageError) as caught:
        stack.init_project(Settings(project_dir=tmp_path))
    message = str(caught.value)
    assert message == (
        f"missing .env.template at {tmp_path / '.env.template'}; "
        "restore it (git checkout .env.template)"
    )
    assert not (tmp_path / ".env").exists()


def test_init_fills_existing_env_without_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing" / ".env.template"
    monkeypatch.setattr(stack, "PACKAGED_TEMPLATE", missing)
    (tmp_path / ".env").write_text("FIRST=1\n")
    generated = stack.init_project(Settings(project_dir=tmp_path))
    assert generated == ["JWT_SECRET_KEY", "LITELLM_MASTER_KEY"]


def test_resolve_services_adds_dependencies() -> None:
    assert stack.resolve_services(["tickets"]) == ["auth", "registry", "tickets"]


def test_resolve_services_defaults_to_all() -> None:
    assert stack.resolve_services([]) == list(SERVICE_NAMES)


def test_resolve_services_unknown_name() -> None:
    with pytest.raises(UsageError, match="choose one of auth, registry"):
        stack.resolve_services(["tickts"])


def test_validate_services_keeps_catalog_order() -> None:
    assert stack.validate_services(["gateway", "auth"]) == ["auth", "gateway"]


def test_default_wait_follows_longest_chain() -> None:
    # auth 30 + gateway 90, plus 5 s of slack.
    assert stack._default_wait(["gateway"]) == 125.0
    # auth 30 + registry 30 + an agent 30, plus 5 s of slack.
    assert stack._default_wait(["tickets"]) == 95.0
    assert stack._default_wait(["tickets", "gateway"]) == 125.0


def test_status_without_state_is_stopped(settings: Settings) -> None:
    statuses = stack.collect_status(settings)
    assert [status.name for status in statuses] == list(SERVICE_NAMES)
    assert {status.state for status in statuses} == {"stopped"}
    assert not all_healthy(statuses)


def test_status_reads_recorded_process(settings: Settings, standins) -> None:
    auth = standins(settings.port("auth"))
    write_state(settings, {"auth": running_entry(auth)})
    status = row(stack.collect_status(settings), "auth")
    assert status.state == "running"
    assert status.pid == auth.pid
    assert status.owned
    assert status.health_ok is True
    assert status.health_status == 200
    assert status.restarts == 2
    assert status.uptime is not None and status.uptime >= 75
    assert status.rss_bytes is not None and status.rss_bytes > 1_000_000
    assert status.cpu_percent is not None


def test_status_marks_dead_pid_stopped(settings: Settings, standins) -> None:
    auth = standins(settings.port("auth"))
    entry = running_entry(auth)
    auth.stop()
    write_state(settings, {"auth": entry})
    status = row(stack.collect_status(settings), "auth")
    assert status.state == "stopped"
    assert status.pid is None
    assert status.health_ok is None


def test_status_ignores_reused_pid(settings: Settings) -> None:
    # Our own pid with another start time stands for a pid the kernel reused.
    entry = {
        "pid": os.getpid(),
        "create_time": psutil.Process().create_time() - 500,
        "state": "running",
    }
    write_state(settings, {"registry": entry})
    status = row(stack.collect_status(settings), "registry")
    assert status.state == "stopped"
    assert status.pid is None


def test_status_shows_external_service(settings: Settings, standins) -> None:
    standins(settings.port("tickets"))
    status = row(stack.collect_status(settings), "tickets")
    assert status.state == "external"
    assert status.healthy
    assert not status.owned
    assert status.listener is not None and "pid" in status.listener


def test_status_unhealthy_listener_not_external(settings: Settings, standins) -> None:
    standins(settings.port("finops"), healthy=False)
    status = row(stack.collect_status(settings), "finops")
    assert status.state == "stopped"
    assert status.health_ok is False
    assert status.health_status == 404


def test_status_survives_corrupted_state(settings: Settings) -> None:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    (settings.run_dir / "state.json").write_text("{not json")
    statuses = stack.collect_status(settings)
    assert len(statuses) == len(SERVICE_NAMES)


def test_status_all_healthy(settings: Settings, standins) -> None:
    entries = {}
    for name in SERVICE_NAMES:
        entries[name] = running_entry(standins(settings.port(name)))
    write_state(settings, entries)
    # The gateway's readiness path is not served by the stand-in.
    statuses = stack.collect_status(settings, resources=False)
    assert [s.name for s in statuses if not s.healthy] == ["gateway"]


def test_status_row_to_dict(settings: Settings, standins) -> None:
    auth = standins(settings.port("auth"))
    write_state(settings, {"auth": running_entry(auth)})
    data = row(stack.collect_status(settings), "auth").to_dict()
    assert data["pid"] == auth.pid
    assert data["healthy"] is True
    assert json.loads(json.dumps(data)) == data


def test_foreign_conflicts_names_holder(settings: Settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", settings.port("oxygen")))
        sock.listen()
        conflicts = stack.foreign_conflicts(settings, ["oxygen", "auth"])
    assert len(conflicts) == 1
    assert f"pid {os.getpid()}" in conflicts[0]
    assert "jarvisctl ports --free --force" in conflicts[0]


def test_up_reports_foreign_port(settings: Settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", settings.port("auth")))
        sock.listen()
        with pytest.raises(ServiceError, match=f"pid {os.getpid()}"):
            stack.up(settings, ["auth"])
    assert not (settings.run_dir / "supervisor.sock").exists()


def test_down_without_supervisor_stops_recorded(settings: Settings, standins) -> None:
    auth = standins(settings.port("auth"))
    registry = standins(settings.port("registry"))
    write_state(
        settings, {"auth": running_entry(auth), "registry": running_entry(registry)}
    )
    result = stack.down(settings, timeout=5)
    assert result.stopped == ["auth", "registry"]
    assert result.leftovers == []
    assert auth.process.wait(timeout=10) is not None
    assert registry.process.wait(timeout=10) is not None
    assert find_listener(settings.port("auth")) is None


def test_down_leaves_foreign_process(settings: Settings, standins) -> None:
    foreign = standins(settings.port("tickets"))
    result = stack.down(settings, timeout=5)
    assert result.stopped == []
    assert foreign.process.poll() is None
    assert len(result.leftovers) == 1
    assert f"pid {foreign.pid}" in result.leftovers[0]


def test_down_skips_reused_pid(settings: Settings) -> None:
    entry = {
        "pid": os.getpid(),
        "create_time": psutil.Process().create_time() - 500,
        "state": "running",
    }
    write_state(settings, {"auth": entry})
    result = stack.down(settings, timeout=5)
    assert result.leftovers == []


def test_port_rows_tell_ours_from_foreign(settings: Settings, standins) -> None:
    auth = standins(settings.port("auth"))
    foreign = standins(settings.port("registry"))
    write_state(settings, {"auth": running_entry(auth)})
    rows = {row.service: row for row in stack.port_rows(settings)}
    assert rows["auth"].owner == "ours"
    assert rows["registry"].owner == "foreign"
    assert rows["registry"].listener is not None
    assert rows["registry"].listener.pid == foreign.pid
    assert rows["tickets"].owner is None


def test_free_ports_needs_force_for_foreign(settings: Settings, standins) -> None:
    foreign = standins(settings.port("registry"))
    done, skipped = stack.free_ports(settings, force=False, confirm=lambda row: True)
    assert done == []
    assert len(skipped) == 1
    assert "--force" in skipped[0]
    assert foreign.process.poll() is None


def test_free_ports_declined_confirmation(settings: Settings, standins) -> None:
    foreign = standins(settings.port("registry"))
    done, skipped = stack.free_ports(settings, force=True, confirm=lambda row: False)
    assert done == []
    assert "left running" in skipped[0]
    assert foreign.process.poll() is None


def test_free_ports_force_stops_foreign(settings: Settings, standins) -> None:
    foreign = standins(settings.port("registry"))
    done, skipped = stack.free_ports(settings, force=True, confirm=lambda row: True)
    assert skipped == []
    assert len(done) == 1
    assert foreign.process.wait(timeout=10) is not None
    assert find_listener(settings.port("registry")) is None


def test_free_ports_stops_own_leftover(settings: Settings, standins) -> None:
    auth = standins(settings.port("auth"))
    write_state(settings, {"auth": running_entry(auth)})
    name = psutil.Process(auth.pid).name()
    done, skipped = stack.free_ports(settings, force=False, confirm=lambda row: False)
    assert skipped == []
    assert done == [f"Stopped pid {auth.pid} ({name}) on port {auth.port} (auth)"]
    assert auth.process.wait(timeout=10) is not None


def test_tail_file_last_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("".join(f"line {index}\n" for index in range(100)))
    assert stack.tail_file(path, 3) == ["line 97", "line 98", "line 99"]


def test_tail_file_missing(tmp_path: Path) -> None:
    assert stack.tail_file(tmp_path / "missing.log", 3) == []


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("JARVIS_STOP_TIMEOUT", "-5", "invalid JARVIS_STOP_TIMEOUT: '-5' is not"),
        ("JARVIS_STOP_TIMEOUT", "soon", "invalid JARVIS_STOP_TIMEOUT: 'soon' is not"),
        ("JWT_EXPIRATION_HOURS", "0", "invalid JWT_EXPIRATION_HOURS: '0' is not"),
        ("JWT_EXPIRATION_HOURS", "nan", "invalid JWT_EXPIRATION_HOURS: 'nan' is not"),
        ("FINOPS_DATA", "missing.csv", "invalid FINOPS_DATA: "),
    ],
)
def test_validate_settings_rejects_value(
    settings: Settings, key: str, value: str, expected: str
) -> None:
    bad = Settings(settings.project_dir, {**settings.env, key: value})
    with pytest.raises(UsageError) as caught:
        stack.validate_settings(bad)
    assert str(caught.value).startswith(expected)


def test_validate_settings_short_secret_hidden(settings: Settings) -> None:
    secret = "s3cret-value-" + "x" * 7
    bad = Settings(settings.project_dir, {**settings.env, "JWT_SECRET_KEY": secret})
    with pytest.raises(UsageError) as caught:
        stack.validate_settings(bad)
    assert str(caught.value) == (
        "invalid JWT_SECRET_KEY: 20 bytes, at least 32 needed; "
        "remove it from .env and run `jarvisctl init`"
    )
    assert secret not in str(caught.value)


def test_validate_settings_duplicate_port(settings: Settings) -> None:
    port = str(settings.port("gateway"))
    bad = Settings(settings.project_dir, {**settings.env, "TICKETS_AGENT_PORT": port})
    with pytest.raises(UsageError) as caught:
        stack.validate_settings(bad)
    assert str(caught.value) == (
        f"TICKETS_AGENT_PORT and LITELLM_GATEWAY_PORT are both {port}; "
        "give each service its own port"
    )


def test_validate_settings_accepts_relative_data(settings: Settings) -> None:
    (settings.project_dir / "costs.csv").write_text("x\n")
    good = Settings(settings.project_dir, {**settings.env, "FINOPS_DATA": "costs.csv"})
    stack.validate_settings(good)


def test_stop_timeout_falls_back_with_warning(settings: Settings) -> None:
    bad = Settings(settings.project_dir, {**settings.env, "JARVIS_STOP_TIMEOUT": "0"})
    warnings: list[str] = []
    stack.validate_settings(bad, stopping=True)
    assert read_stop_timeout(bad, warnings.append) == 10.0
    assert warnings == [
        "invalid JARVIS_STOP_TIMEOUT: '0' is not a positive number of seconds; "
        "set it in .env, for example JARVIS_STOP_TIMEOUT=10; using 10 s"
    ]


def test_crash_loop_failure_names_reason() -> None:
    status = ServiceStatus(
        name="finops",
        port=8081,
        state="crash-looping",
        error="Failed to start finops: FINOPS_DATA /x.csv not found",
    )
    failure = stack._check_failure(status, requested_at=0.0, began={})
    assert failure is not None
    assert failure.reason == (
        "crash-looping: Failed to start finops: FINOPS_DATA /x.csv not found"
    )
