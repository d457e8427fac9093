"""End-to-end tests of the `jarvisctl` commands, run as real subprocesses.

Each test gets a temporary project with free ports. The stack is made of
stand-ins (`python -m http.server` serving GET /health with 200) named like
the real services and handed to the supervisor and the CLI through
JARVIS_SERVICES_FILE.
"""

from __future__ import annotations

import io
import json
import os
import pty
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psutil
import pytest

from jarvisctl.config import SERVICES
from jarvisctl.envfile import read_env
from jarvisctl.ports import find_listener
from jarvisctl.supervisor import write_services_file

ROOT = Path(__file__).resolve().parent.parent
NAMES = [spec.name for spec in SERVICES]
# Seconds one CLI command may take before the test fails; `up` of stand-ins
# takes a few seconds.
COMMAND_TIMEOUT = 120.0
# A stand-in that prints a marker line, then serves no /health (404 forever).
UNHEALTHY_SCRIPT = """
import http.server, sys

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

print("marker: stand-in booting", flush=True)
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), QuietHandler)
server.serve_forever()
"""
# Seconds the never-healthy stand-in gets before `up` gives up on it.
UNHEALTHY_TIMEOUT = 3.0
# A foreign process that listens on argv[1] until killed.
LISTENER_SCRIPT = """
import socket, sys, time
sock = socket.socket()
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
while True:
    time.sleep(1)
"""


@dataclass
class Stack:
    """A temporary project whose services are stand-ins."""

    directory: Path
    env: dict[str, str]
    ports: dict[str, int]

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jarvisctl", *args],
            cwd=self.directory,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "jarvisctl", *args],
            cwd=self.directory,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def state(self) -> dict:
        return json.loads((self.directory / ".jarvis" / "state.json").read_text())

    def pids(self) -> dict[str, int | None]:
        return {name: entry["pid"] for name, entry in self.state()["services"].items()}


def write_catalog(directory: Path, ports: dict[str, int], unhealthy: str = "") -> Path:
    """Write a services file of stand-ins; `unhealthy` names one that never is."""
    www = directory / "www"
    www.mkdir(exist_ok=True)
    (www / "health").write_text("ok\n")
    specs = []
    for spec in SERVICES:
        port = str(ports[spec.name])
        command: tuple[str, ...] = (
            sys.executable,
            "-m",
            "http.server",
            port,
            "--bind",
            "127.0.0.1",
            "--directory",
            str(www),
        )
        start_timeout = 15.0
        if spec.name == unhealthy:
            command = (sys.executable, "-c", UNHEALTHY_SCRIPT, port)
            start_timeout = UNHEALTHY_TIMEOUT
        specs.append(
            replace(
                spec,
                command=command,
                health_path="/health",
                start_timeout=start_timeout,
            )
        )
    path = directory / "services.json"
    write_services_file(path, specs)
    return path


def make_stack(project, unhealthy: str = "") -> Stack:
    ports = {name: project.port(name) for name in NAMES}
    catalog = write_catalog(project.directory, ports, unhealthy)
    env = project.process_env(JARVIS_SERVICES_FILE=str(catalog), NO_COLOR="1")
    env["PYTHONPATH"] = str(ROOT)
    env.pop("COLUMNS", None)
    return Stack(project.directory, env, ports)


def stop_leftovers(stack: Stack) -> None:
    """Bring down what a failed test left running: CLI first, then by pid."""
    stack.run("down", "--timeout", "5")
    try:
        state = stack.state()
    except (OSError, ValueError):
        return
    records = [state.get("supervisor") or {}, *state["services"].values()]
    for record in records:
        pid = record.get("pid")
        if not isinstance(pid, int):
            continue
        try:
            process = psutil.Process(pid)
            if abs(process.create_time() - (record.get("create_time") or 0)) < 0.05:
                os.killpg(pid, signal.SIGKILL)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue


@pytest.fixture
def stack(project) -> Iterator[Stack]:
    running = make_stack(project)
    yield running
    stop_leftovers(running)


@pytest.fixture
def foreign_listener(stack: Stack) -> Iterator[subprocess.Popen[bytes]]:
    """A process outside the stack listening on the tickets port."""
    port = stack.ports["tickets"]
    process = subprocess.Popen(
        [sys.executable, "-c", LISTENER_SCRIPT, str(port)], start_new_session=True
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        listener = find_listener(port)
        if listener is not None and listener.pid == process.pid:
            break
        time.sleep(0.05)
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def table_rows(output: str) -> dict[str, list[str]]:
    """Split a plain status table into cells by service name."""
    rows = {}
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] in NAMES:
            rows[cells[0]] = cells
    return rows


def stack_processes(stack: Stack) -> list[psutil.Process]:
    """Return live processes whose command line names this project's files."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(stack.directory) in cmdline and process.pid != os.getpid():
            found.append(process)
    return found


def exited(pid: int) -> bool:
    """Return True when `pid` is gone or a zombie waiting for its parent."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def supervisors(stack: Stack) -> list[psutil.Process]:
    return [
        process
        for process in stack_processes(stack)
        if "jarvisctl.supervisor" in " ".join(process.cmdline())
    ]


def test_up_status_down_cycle(stack: Stack) -> None:
    up = stack.run("up")
    assert up.returncode == 0, up.stderr
    pids = stack.pids()
    assert all(isinstance(pid, int) for pid in pids.values()), pids

    status = stack.run("status")
    assert status.returncode == 0, status.stderr
    rows = table_rows(status.stdout)
    assert sorted(rows) == sorted(NAMES)
    for name in NAMES:
        cells = rows[name]
        assert cells[1] == str(stack.ports[name])
        assert cells[2] == str(pids[name])
        assert cells[3] == "running"
        assert "200" in cells

    as_json = stack.run("status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert [item["name"] for item in data] == NAMES
    for item in data:
        assert item["pid"] == pids[item["name"]]
        assert item["port"] == stack.ports[item["name"]]
        assert item["state"] == "running"
        assert item["healthy"] is True
        assert item["health_status"] == 200

    down = stack.run("down")
    assert down.returncode == 0, down.stderr
    for name, pid in pids.items():
        assert exited(pid), name
    for name, port in stack.ports.items():
        assert find_listener(port) is None, name
    assert supervisors(stack) == []
    assert stack_processes(stack) == []


def test_up_foreground_until_interrupt(stack: Stack) -> None:
    running = stack.popen("up", "registry", "--foreground")
    deadline = time.monotonic() + COMMAND_TIMEOUT
    states: dict[str, str] = {}
    while time.monotonic() < deadline and states.get("registry") != "running":
        time.sleep(0.2)
        try:
            services = stack.state()["services"]
        except (OSError, ValueError):
            continue
        states = {name: entry["state"] for name, entry in services.items()}
    running.send_signal(signal.SIGINT)
    output, errors = running.communicate(timeout=COMMAND_TIMEOUT)
    assert states["registry"] == "running"
    assert running.returncode == 0, errors
    assert "registry | " in output
    assert "auth     | " in output
    assert "Started registry" in errors
    assert stack_processes(stack) == []


def test_status_exit_1_when_stopped(stack: Stack) -> None:
    result = stack.run("status")
    assert result.returncode == 1
    assert set(table_rows(result.stdout)) == set(NAMES)


def test_up_twice_keeps_pids(stack: Stack) -> None:
    first = stack.run("up")
    assert first.returncode == 0, first.stderr
    pids = stack.pids()
    second = stack.run("up")
    assert second.returncode == 0, second.stderr
    assert stack.pids() == pids
    assert len(supervisors(stack)) == 1


def test_concurrent_up_starts_one_stack(stack: Stack) -> None:
    runs = [stack.popen("up"), stack.popen("up")]
    outputs = [run.communicate(timeout=COMMAND_TIMEOUT) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert len(supervisors(stack)) == 1
    # One process per service, plus the supervisor.
    assert len(stack_processes(stack)) == len(NAMES) + 1


def test_up_partial_adds_dependencies(stack: Stack) -> None:
    result = stack.run("up", "tickets")
    assert result.returncode == 0, result.stderr
    states = {name: entry["state"] for name, entry in stack.state()["services"].items()}
    assert states["auth"] == "running"
    assert states["registry"] == "running"
    assert states["tickets"] == "running"
    assert states["gateway"] == "stopped"


def test_restart_replaces_process(stack: Stack) -> None:
    assert stack.run("up").returncode == 0
    before = stack.pids()
    result = stack.run("restart", "finops")
    assert result.returncode == 0, result.stderr
    after = stack.pids()
    assert after["finops"] != before["finops"]
    assert after["auth"] == before["auth"]
    # An explicit restart is not counted; only automatic restarts are.
    assert stack.state()["services"]["finops"]["restarts"] == 0


def test_down_named_service_only(stack: Stack) -> None:
    assert stack.run("up", "registry").returncode == 0
    pids = stack.pids()
    result = stack.run("down", "registry")
    states = {name: entry["state"] for name, entry in stack.state()["services"].items()}
    assert result.returncode == 0, result.stderr
    assert "Stopped registry" in result.stdout
    assert states["registry"] == "stopped"
    assert states["auth"] == "running"
    assert stack.pids()["auth"] == pids["auth"]
    assert find_listener(stack.ports["registry"]) is None


def test_down_after_supervisor_killed(stack: Stack) -> None:
    assert stack.run("up").returncode == 0
    pids = stack.pids()
    supervisor = stack.state()["supervisor"]
    os.kill(supervisor["pid"], signal.SIGKILL)
    psutil.Process(supervisor["pid"]).wait(timeout=10)
    assert all(psutil.pid_exists(pid) for pid in pids.values())

    result = stack.run("down", "--timeout", "5")
    assert result.returncode == 0, result.stderr
    assert stack_processes(stack) == []
    for port in stack.ports.values():
        assert find_listener(port) is None


def test_up_reports_foreign_port(stack: Stack) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", stack.ports["auth"]))
        sock.listen()
        result = stack.run("up")
        listener = find_listener(stack.ports["auth"])
    assert result.returncode == 1
    assert f"pid {os.getpid()}" in result.stderr
    assert "jarvisctl ports --free --force" in result.stderr
    assert listener is not None
    assert listener.pid == os.getpid()


def test_ports_free_needs_force(stack: Stack, foreign_listener) -> None:
    result = stack.run("ports", "--free")
    assert result.returncode == 1
    assert f"pid {foreign_listener.pid}" in result.stderr
    assert "--force" in result.stderr
    assert foreign_listener.poll() is None


def test_ports_free_force_stops_foreign(stack: Stack, foreign_listener) -> None:
    listed = stack.run("ports", "--json")
    rows = {row["service"]: row for row in json.loads(listed.stdout)}
    assert rows["tickets"]["pid"] == foreign_listener.pid
    assert rows["tickets"]["owner"] == "foreign"

    result = stack.run("ports", "--free", "--force", "--yes")
    assert result.returncode == 0, result.stderr
    assert f"Stopped pid {foreign_listener.pid}" in result.stdout
    assert foreign_listener.wait(timeout=10) is not None
    assert find_listener(stack.ports["tickets"]) is None


def test_ports_force_declined_without_tty(stack: Stack, foreign_listener) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jarvisctl", "ports", "--free", "--force"],
        cwd=stack.directory,
        env=stack.env,
        input="",
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    assert result.returncode == 1
    assert foreign_listener.poll() is None


def test_up_unhealthy_service_fails(project) -> None:
    stack = make_stack(project, unhealthy="tickets")
    try:
        result = stack.run("up", "tickets", "--timeout", "20")
        assert result.returncode == 1
        assert "tickets" in result.stderr
        assert f"not healthy within {UNHEALTHY_TIMEOUT:.0f} s" in result.stderr
        assert "marker: stand-in booting" in result.stderr
        errors = [line for line in result.stderr.splitlines() if "error:" in line]
        expected = f"error: tickets: not healthy within {UNHEALTHY_TIMEOUT:.0f} s"
        assert errors == [expected]
    finally:
        stop_leftovers(stack)


def test_up_failed_dependency_stops_wait(project) -> None:
    stack = make_stack(project, unhealthy="auth")
    try:
        result = stack.run("up", "registry")
        errors = [line for line in result.stderr.splitlines() if "error:" in line]
        assert result.returncode == 1
        assert errors == [
            f"error: auth: not healthy within {UNHEALTHY_TIMEOUT:.0f} s",
            "error: registry: not started because auth failed",
        ]
    finally:
        stop_leftovers(stack)


def test_unknown_service_exit_2(stack: Stack) -> None:
    result = stack.run("up", "tikets")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2
    assert len(lines) == 1
    assert "'tikets'" in lines[0]
    for name in NAMES:
        assert name in lines[0]


def test_invalid_port_exit_2(stack: Stack) -> None:
    env = dict(stack.env)
    del env["AUTH_SERVICE_PORT"]
    (stack.directory / ".env").write_text("AUTH_SERVICE_PORT=99999\n")
    result = stack.run("status", env=env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2
    assert len(lines) == 1
    assert "AUTH_SERVICE_PORT" in lines[0]
    assert "Traceback" not in result.stderr


def test_init_hides_secrets(stack: Stack) -> None:
    result = stack.run("init")
    env_file = stack.directory / ".env"
    values = read_env(env_file)
    assert result.returncode == 0, result.stderr
    assert "JWT_SECRET_KEY" in result.stdout
    assert "LITELLM_MASTER_KEY" in result.stdout
    assert values["JWT_SECRET_KEY"] not in result.stdout + result.stderr
    assert values["LITELLM_MASTER_KEY"] not in result.stdout + result.stderr
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_init_twice_changes_nothing(stack: Stack) -> None:
    assert stack.run("init").returncode == 0
    first = (stack.directory / ".env").read_text()
    again = stack.run("init")
    assert again.returncode == 0
    assert "nothing to change" in again.stdout
    assert (stack.directory / ".env").read_text() == first
    template_head = (ROOT / ".env.template").read_text().splitlines()[0]
    assert first.splitlines()[0] == template_head


def test_logs_merge_services(stack: Stack) -> None:
    assert stack.run("up", "registry").returncode == 0
    result = stack.run("logs", "-n", "50")
    prefixes = {line.split("|")[0].strip() for line in result.stdout.splitlines()}
    assert result.returncode == 0
    assert {"auth", "registry"} <= prefixes
    timestamps = [line.split("| ", 1)[1][:23] for line in result.stdout.splitlines()]
    assert timestamps == sorted(timestamps)


def test_logs_follow_stops(stack: Stack) -> None:
    result = stack.run("logs", "-f", "--duration", "0.5")
    assert result.returncode == 0


def test_status_watch_smoke(stack: Stack) -> None:
    result = stack.run("status", "--watch", "--iterations", "2")
    assert result.returncode == 1
    assert "auth" in result.stdout


def run_in_pty(stack: Stack, args: list[str], extra_env: dict[str, str]) -> str:
    """Run the CLI with a terminal as stdout and return what it printed."""
    env = dict(stack.env)
    env.pop("NO_COLOR", None)
    env.update(extra_env, TERM="xterm-256color")
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "jarvisctl", *args],
        cwd=stack.directory,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.DEVNULL,
    )
    os.close(follower)

    output = b""
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk

    process.wait(timeout=10)
    os.close(leader)
    return output.decode(errors="replace")


def test_terminal_output_is_styled(stack: Stack) -> None:
    assert "\x1b[" in run_in_pty(stack, ["status"], {})


def test_no_color_terminal_plain(stack: Stack) -> None:
    output = run_in_pty(stack, ["status"], {"NO_COLOR": "1"})
    assert "auth" in output
    assert "\x1b[" not in output


def test_piped_output_plain(stack: Stack) -> None:
    env = dict(stack.env)
    env.pop("NO_COLOR")
    result = stack.run("status", env=env)
    assert "auth" in result.stdout
    assert "\x1b[" not in result.stdout
    assert "\x1b[" not in result.stderr


LIGHT_IMPORT_CHECK = """
import sys
from jarvisctl.cli import main
sys.argv = ["jarvisctl", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("HEAVY", sorted(m for m in ("litellm", "fastapi", "a2a") if m in sys.modules))
"""


@pytest.mark.parametrize("args", [["--help"], ["status"], ["status", "--json"]])
def test_commands_skip_heavy_imports(stack: Stack, args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LIGHT_IMPORT_CHECK, *args],
        cwd=stack.directory,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_real_stack_up_down(project) -> None:
    """Bring up the six real services, gateway included, and take them down."""
    config = "litellm_config.yaml"
    shutil.copy(ROOT / config, project.directory / config)
    env = project.process_env(PYTHONPATH=str(ROOT))
    env.pop("JARVIS_SERVICES_FILE", None)
    stack = Stack(project.directory, env, {name: project.port(name) for name in NAMES})
    try:
        up = stack.run("up")
        assert up.returncode == 0, up.stdout + up.stderr
        status = stack.run("status", "--json")
        rows = {row["name"]: row for row in json.loads(status.stdout)}
        assert status.returncode == 0, status.stderr
        for name in NAMES:
            assert rows[name]["healthy"] is True, rows[name]
        assert rows["tickets"]["card_name"] == "TicketsAgent"
        assert rows["finops"]["card_name"] == "FinOpsAgent"
        assert rows["oxygen"]["card_name"] == "OxygenAgent"
        pids = stack.pids()

        down = stack.run("down")
        assert down.returncode == 0, down.stderr
        for name, pid in pids.items():
            assert exited(pid), name
        for port in stack.ports.values():
            assert find_listener(port) is None
    finally:
        stop_leftovers(stack)


def render_status(rows: list, width: int) -> str:
    """Render the status view on a terminal console `width` columns wide."""
    from rich.console import Console

    from jarvisctl import views

    console = Console(
        width=width, file=io.StringIO(), force_terminal=True, color_system=None
    )
    console.print(views.status_view(rows, width))
    return console.file.getvalue()


def test_status_table_narrow_keeps_key_columns() -> None:
    from jarvisctl.status import ServiceStatus

    error = "port 8080 is held by pid 4121 (python3) " + "x" * 60
    rows = [
        ServiceStatus("registry", 8003, "crash-looping", pid=1234567, restarts=12),
        ServiceStatus("tickets", 8080, "stopped", error=error),
    ]
    output = render_status(rows, 80)
    lines = output.splitlines()
    header = next(line for line in lines if "NAME" in line)
    assert header.split()[:6] == ["NAME", "PORT", "PID", "STATE", "UPTIME", "RESTARTS"]
    assert "…" not in output
    assert ["registry", "8003", "1234567", "crash-looping"] == table_rows(output)[
        "registry"
    ][:4]
    assert ["tickets", "8080", "-", "stopped"] == table_rows(output)["tickets"][:4]
    assert "tickets: port 8080 is held by pid 4121 (python3)" in output
    assert max(len(line) for line in lines) <= 80


def test_usage_errors_exit_2() -> None:
    for args in (["frobnicate"], ["status", "--bogus"], ["invoke"], ["logs", "-n", "x"]):
        result = subprocess.run(
            [sys.executable, "-m", "jarvisctl", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert result.returncode == 2, (args, result.stderr)
        assert "Error:" in result.stderr
        assert "unexpected" not in result.stderr


def test_invalid_env_value_stops_up_early(stack: Stack) -> None:
    result = stack.run("up", env={**stack.env, "JWT_EXPIRATION_HOURS": "0"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid JWT_EXPIRATION_HOURS: '0'")
    assert len(result.stderr.splitlines()) == 1
    assert not (stack.directory / ".jarvis" / "state.json").exists()


def test_down_invalid_stop_timeout_warns(stack: Stack) -> None:
    result = stack.run("down", env={**stack.env, "JARVIS_STOP_TIMEOUT": "-1"})
    assert result.returncode == 0, result.stderr
    assert "warning: invalid JARVIS_STOP_TIMEOUT: '-1'" in result.stderr
    assert "using 10 s" in result.stderr


def test_up_interrupted_keeps_supervisor(project) -> None:
    stack = make_stack(project, unhealthy="gateway")
    try:
        process = stack.popen("up")
        state_file = stack.directory / ".jarvis" / "state.json"
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while not state_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
        assert process.returncode == 130
        assert stderr.strip().splitlines()[-1] == (
            "interrupted: the supervisor keeps starting the stack; "
            "run `jarvisctl down` to stop it"
        )
        assert "Traceback" not in stderr
        assert len(supervisors(stack)) == 1
    finally:
        stop_leftovers(stack)


def test_logs_strip_escape_codes(stack: Stack) -> None:
    log_dir = stack.directory / ".jarvis" / "logs"
    log_dir.mkdir(parents=True)
    line = "\x1b[32mINFO\x1b[0m:     Uvicorn running\x1b]0;proxy\x07"
    (log_dir / "gateway.log").write_text(f"2026-12-04T15:40:01.123 {line}\n")
    result = stack.run("logs", "gateway")
    assert result.returncode == 0, result.stderr
    assert "INFO:     Uvicorn running" in result.stdout
    assert "\x1b" not in result.stdout


def test_logs_without_run_dir_hint(stack: Stack) -> None:
    result = stack.run("logs")
    log_dir = stack.directory / ".jarvis" / "logs"
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"no logs yet in {log_dir}; run `jarvisctl up`\n"


def test_ports_force_prompt_shows_choices(stack: Stack, foreign_listener) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jarvisctl", "ports", "--free", "--force"],
        cwd=stack.directory,
        env=stack.env,
        input="",
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    prompt = next(line for line in result.stdout.splitlines() if "Stop pid" in line)
    assert prompt.endswith("? [y/N] ")
    assert foreign_listener.poll() is None


def test_exposed_bind_host_warns(tmp_path: Path, capsys) -> None:
    from jarvisctl.cli import _warn_if_exposed
    from jarvisctl.config import Settings

    _warn_if_exposed(Settings(tmp_path, {"JARVIS_BIND_HOST": "127.0.0.1"}))
    assert capsys.readouterr().err == ""

    exposed = {"JARVIS_BIND_HOST": "0.0.0.0", "JARVIS_DEMO_PASSWORD": "s3cret-demo"}
    _warn_if_exposed(Settings(tmp_path, exposed))
    err = capsys.readouterr().err
    assert "listen on 0.0.0.0" in err
    assert "JARVIS_ADMIN_PASSWORD" in err
    assert "JARVIS_DEMO_PASSWORD" not in err
    assert "s3cret-demo" not in err
