"""Tests of the supervisor with stand-in services run as real processes."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import ROOT
from jarvisctl import control, process
from jarvisctl.config import ServiceSpec, Settings, load_settings
from jarvisctl.errors import ControlError
from jarvisctl.logfiles import log_path
from jarvisctl.state import read_state
from jarvisctl.supervisor import (
    Supervisor,
    SupervisorRunningError,
    Timing,
    start_detached,
    write_services_file,
)

# Bound on every wait in these tests; a healthy run needs a few seconds.
WAIT_TIMEOUT = 30.0
FAST = Timing(
    tick=0.1,
    probe_interval=0.3,
    starting_probe_interval=0.1,
    probe_timeout=0.5,
    backoff_initial=0.1,
    backoff_max=1.0,
    stop_timeout=3.0,
    config_check_interval=0.2,
)

# A stand-in service: `standin.py MODE PORT_KEY [EXTRA_FILE]`. It responds to
# GET /health with 200 on the port named by the PORT_KEY environment variable.
STANDIN = textwrap.dedent(
    """
    import http.server, json, os, signal, subprocess, sys, time

    mode, port_key = sys.argv[1], sys.argv[2]
    port = int(os.environ[port_key])
    if mode == "crash":
        print("crashing on purpose", flush=True)
        sys.exit(1)
    if mode == "config-error":
        print("2026-12-04 15:40:01,123 INFO app: Loading settings", flush=True)
        print(
            "2026-12-04 15:40:01,124 ERROR services.common.server: Failed to start "
            "finops: FINOPS_DATA /nowhere/focus.csv not found",
            flush=True,
        )
        print("", flush=True)
        sys.exit(3)
    if mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if mode == "write-file":
        with open(sys.argv[3], "w") as handle:
            handle.write("ticket contents")
    if mode == "spawn-child":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        with open(sys.argv[3], "w") as handle:
            handle.write(str(child.pid))


    CARD = {"name": "StandInAgent", "version": "2.1.0", "skills": [{"id": "a"}]}


    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"ok"
            if self.path == "/health":
                status = 503 if mode == "unhealthy" else 200
            elif self.path == "/.well-known/agent-card.json" and mode == "agent":
                status, body = 200, json.dumps(CARD).encode()
            else:
                status = 404
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if mode == "registry" and self.path == "/agents":
                with open(sys.argv[3], "ab") as handle:
                    handle.write(body + b"\\n")
                status = 201
            else:
                status = 404
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass


    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on {port} in mode {mode}", flush=True)
    server.serve_forever()
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gone(pid: int) -> bool:
    """Tell whether `pid` exited; a zombie not yet reaped by its new parent counts."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(
    condition: Callable[[], Any], what: str, timeout: float = WAIT_TIMEOUT
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@dataclass
class Stack:
    """A temporary project with stand-in services and a cleanup list."""

    directory: Path
    script: Path
    ports: dict[str, int] = field(default_factory=dict)
    pids: list[int] = field(default_factory=list)

    def spec(
        self,
        name: str,
        mode: str = "serve",
        depends_on: tuple[str, ...] = (),
        card_name: str | None = None,
        start_timeout: float = 30.0,
    ) -> ServiceSpec:
        key = f"STANDIN_{name.upper()}_PORT"
        self.ports[name] = free_port()
        with open(self.directory / ".env", "a") as env_file:
            env_file.write(f"{key}={self.ports[name]}\n")
        argv = [sys.executable, str(self.script), mode, key]
        if mode == "spawn-child":
            argv.append(str(self.directory / f"{name}.child"))
        if mode == "registry":
            argv.append(str(self.directory / "registered.jsonl"))
        if mode == "write-file":
            argv.append(str(self.directory / f"{name}.db"))
        return ServiceSpec(
            name,
            key,
            self.ports[name],
            "unused",
            "/health",
            depends_on=depends_on,
            card_name=card_name,
            start_timeout=start_timeout,
            command=tuple(argv),
        )

    @property
    def settings(self) -> Settings:
        return load_settings(self.directory)

    def service(self, name: str) -> dict[str, Any]:
        reply = control.request(self.settings, {"cmd": "state"})
        return reply["state"]["services"][name]


def kill_leftovers(stack: Stack) -> None:
    """SIGKILL every process the test started, whatever state it was left in."""
    targets = {child.pid: child for child in psutil.Process().children(recursive=True)}
    state = read_state(stack.settings)
    if state is not None:
        for record in state.services.values():
            if process.is_same_process(record.pid, record.create_time):
                targets.setdefault(record.pid, psutil.Process(record.pid))
    for pid in stack.pids:
        if psutil.pid_exists(pid):
            targets.setdefault(pid, psutil.Process(pid))
    for name in stack.ports:
        child_file = stack.directory / f"{name}.child"
        if child_file.exists():
            pid = int(child_file.read_text())
            if psutil.pid_exists(pid):
                targets.setdefault(pid, psutil.Process(pid))
    for proc in list(targets.values()):
        try:
            targets.update({c.pid: c for c in proc.children(recursive=True)})
        except psutil.Error:
            pass
    for proc in targets.values():
        try:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(list(targets.values()), timeout=5)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    script = tmp_path / "standin.py"
    script.write_text(STANDIN)
    (tmp_path / ".env").write_text(f"JARVIS_RUN_DIR={tmp_path / '.jarvis'}\n")
    created = Stack(directory=tmp_path, script=script)
    yield created
    kill_leftovers(created)


@pytest.fixture
def supervise(stack: Stack) -> Iterator[Callable[..., Supervisor]]:
    """Run a Supervisor in a thread of the test; shut down afterwards."""
    running: list[tuple[Supervisor, threading.Thread]] = []

    def start(specs: list[ServiceSpec], names: list[str], **options: Any) -> Supervisor:
        supervisor = Supervisor(
            stack.directory, services=specs, timing=FAST, start=names, **options
        )
        thread = threading.Thread(target=supervisor.run, daemon=True)
        thread.start()
        running.append((supervisor, thread))
        wait_until(lambda: control.supervisor_alive(stack.settings), "control socket")
        return supervisor

    yield start
    for supervisor, thread in running:
        supervisor.request_shutdown()
        thread.join(timeout=WAIT_TIMEOUT)


def wait_state(stack: Stack, name: str, state: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        record = stack.service(name)
        return record if record["state"] == state else None

    return wait_until(reached, f"{name} to be {state}")


def test_supervisor_starts_service_running(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    spec = stack.spec("alpha")
    supervise([spec], ["alpha"])

    record = wait_state(stack, "alpha", "running")

    assert record["health"]["ok"] is True
    assert record["health"]["status"] == 200
    assert record["port"] == stack.ports["alpha"]
    assert process.is_same_process(record["pid"], record["create_time"])
    assert os.getpgid(record["pid"]) == record["pid"]
    log_file = log_path(stack.settings.log_dir, "alpha")
    log_text = wait_until(
        lambda: "listening on" in log_file.read_text() and log_file.read_text(),
        "output in the log",
    )
    assert f"listening on {stack.ports['alpha']}" in log_text


def test_supervisor_restarts_killed_service(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    supervise([stack.spec("alpha")], ["alpha"])
    first = wait_state(stack, "alpha", "running")

    os.kill(first["pid"], signal.SIGKILL)
    second = wait_until(
        lambda: (
            (r := stack.service("alpha"))["state"] == "running"
            and r["pid"] != first["pid"]
            and r
        ),
        "alpha to run again",
    )

    assert second["restarts"] == 1
    assert second["last_exit"] == -signal.SIGKILL
    assert not process.is_same_process(first["pid"], first["create_time"])


def _replaced(stack: Stack, name: str, old_pid: int) -> dict[str, Any]:
    return wait_until(
        lambda: (
            (r := stack.service(name))["state"] == "running"
            and r["pid"] != old_pid
            and r
        ),
        f"{name} to run with a new pid",
    )


def test_restarts_count_only_automatic(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    supervise([stack.spec("alpha")], ["alpha"])
    first = wait_state(stack, "alpha", "running")
    os.kill(first["pid"], signal.SIGKILL)
    crashed = _replaced(stack, "alpha", first["pid"])

    control.request(stack.settings, {"cmd": "restart", "services": ["alpha"]})
    requested = _replaced(stack, "alpha", crashed["pid"])
    control.request(stack.settings, {"cmd": "stop", "services": ["alpha"]})
    wait_state(stack, "alpha", "stopped")
    control.request(stack.settings, {"cmd": "start", "services": ["alpha"]})
    started = wait_state(stack, "alpha", "running")

    assert crashed["restarts"] == 1
    assert requested["restarts"] == 1
    assert started["restarts"] == 0


def test_restarts_reset_by_new_supervisor(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    spec = stack.spec("alpha")
    first_supervisor = supervise([spec], ["alpha"])
    first = wait_state(stack, "alpha", "running")
    os.kill(first["pid"], signal.SIGKILL)
    crashed = _replaced(stack, "alpha", first["pid"])
    first_supervisor.request_shutdown()
    wait_until(
        lambda: not control.supervisor_alive(stack.settings), "the first to exit"
    )

    supervise([spec], ["alpha"])
    fresh = wait_state(stack, "alpha", "running")

    assert crashed["restarts"] == 1
    assert fresh["pid"] != crashed["pid"]
    assert fresh["restarts"] == 0


def test_supervisor_marks_crash_looping(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    supervise([stack.spec("crashy", mode="crash")], ["crashy"])

    record = wait_state(stack, "crashy", "crash-looping")
    time.sleep(FAST.backoff_max + 0.5)
    later = stack.service("crashy")

    assert record["pid"] is None
    assert record["last_exit"] == 1
    assert record["restarts"] == FAST.crash_exits - 1
    assert later["state"] == "crash-looping"
    assert later["restarts"] == record["restarts"]
    log_text = log_path(stack.settings.log_dir, "crashy").read_text()
    assert log_text.count("crashing on purpose") == FAST.crash_exits


def test_config_error_exit_not_retried(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    supervise([stack.spec("finops", mode="config-error")], ["finops"])

    record = wait_state(stack, "finops", "crash-looping")
    time.sleep(FAST.backoff_max + 0.5)
    later = stack.service("finops")

    assert record["last_exit"] == 3
    assert record["restarts"] == 0
    assert record["error"] == (
        "Failed to start finops: FINOPS_DATA /nowhere/focus.csv not found"
    )
    assert later["state"] == "crash-looping"
    assert later["restarts"] == 0
    log_text = log_path(stack.settings.log_dir, "finops").read_text()
    assert log_text.count("Loading settings") == 1


def test_created_files_are_private(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    # The common default umask 022 lets everyone read new files, so the test
    # shows that the supervisor sets its own.
    previous_umask = os.umask(0o022)
    try:
        supervise([stack.spec("tickets", mode="write-file")], ["tickets"])
        wait_state(stack, "tickets", "running")
        database = stack.directory / "tickets.db"
        wait_until(database.exists, "the service to create its file")
    finally:
        os.umask(previous_umask)
    settings = stack.settings
    wait_until(log_path(settings.log_dir, "tickets").exists, "the log file")

    private_files = [
        database,
        log_path(settings.log_dir, "tickets"),
        settings.run_dir / "state.json",
        settings.run_dir / "supervisor.lock",
    ]
    for path in private_files:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    assert settings.run_dir.stat().st_mode & 0o777 == 0o700
    assert settings.log_dir.stat().st_mode & 0o777 == 0o700


def test_stop_kills_service_ignoring_sigterm(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    supervise([stack.spec("stubborn", mode="ignore-term")], ["stubborn"])
    record = wait_state(stack, "stubborn", "running")

    reply = control.request(
        stack.settings, {"cmd": "stop", "services": ["stubborn"], "timeout": 0.5}
    )
    stopped = wait_state(stack, "stubborn", "stopped")

    assert reply == {"ok": True}
    assert stopped["desired"] == "stopped"
    assert stopped["last_exit"] == -signal.SIGKILL
    assert gone(record["pid"])
    assert not process.port_in_use("127.0.0.1", stack.ports["stubborn"])


def test_stop_kills_child_processes(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    supervise([stack.spec("parent", mode="spawn-child")], ["parent"])
    record = wait_state(stack, "parent", "running")
    child_file = stack.directory / "parent.child"
    child_pid = int(
        wait_until(lambda: child_file.exists() and child_file.read_text(), "child pid")
    )
    assert psutil.pid_exists(child_pid)

    control.request(stack.settings, {"cmd": "stop", "services": ["parent"]})
    wait_state(stack, "parent", "stopped")

    assert gone(record["pid"])
    assert gone(child_pid)


def test_supervisor_restarts_sigstopped_service(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    supervise([stack.spec("frozen")], ["frozen"])
    first = wait_state(stack, "frozen", "running")
    stack.pids.append(first["pid"])

    os.kill(first["pid"], signal.SIGSTOP)
    assert process.port_in_use("127.0.0.1", stack.ports["frozen"])
    second = wait_until(
        lambda: (
            (r := stack.service("frozen"))["state"] == "running"
            and r["pid"] != first["pid"]
            and r
        ),
        "frozen to be replaced",
    )

    assert second["restarts"] == 1
    assert not process.is_alive(first["pid"], first["create_time"])


def test_service_starts_after_dependency_healthy(
    stack: Stack, supervise: Callable[..., Supervisor], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="jarvisctl.supervisor")
    base = stack.spec("base")
    top = stack.spec("top", depends_on=("base",))
    supervise([top, base], ["top", "base"])

    wait_state(stack, "top", "running")

    messages = [record.getMessage() for record in caplog.records]
    healthy_base = next(
        i for i, m in enumerate(messages) if m.startswith("Marked base")
    )
    started_top = next(i for i, m in enumerate(messages) if m.startswith("Started top"))
    assert healthy_base < started_top


def test_unhealthy_start_is_restarted(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    supervise([stack.spec("sick", mode="unhealthy", start_timeout=0.5)], ["sick"])

    record = wait_until(
        lambda: (r := stack.service("sick"))["restarts"] >= 1 and r, "a restart"
    )

    assert record["state"] in ("starting", "backoff", "crash-looping")
    log_text = log_path(stack.settings.log_dir, "sick").read_text()
    assert "sick was not healthy within 0.5 s" in log_text


def test_agent_registered_with_registry(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    registry = stack.spec("registry", mode="registry")
    agent = stack.spec(
        "tickets", mode="agent", depends_on=("registry",), card_name="StandInAgent"
    )
    supervise([registry, agent], ["registry", "tickets"])
    registered = stack.directory / "registered.jsonl"

    record = wait_state(stack, "tickets", "running")
    text = wait_until(lambda: registered.exists() and registered.read_text(), "POST")

    card_url = f"http://127.0.0.1:{stack.ports['tickets']}/.well-known/agent-card.json"
    assert json.loads(text.splitlines()[0]) == {"card_url": card_url}
    assert record["card"]["name"] == "StandInAgent"
    assert record["card"]["version"] == "2.1.0"
    assert record["card"]["skills"] == 1


def test_output_lines_reach_callback(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    lines: list[tuple[str, str]] = []
    supervise(
        [stack.spec("alpha")], ["alpha"], on_line=lambda s, t: lines.append((s, t))
    )

    wait_until(lambda: lines, "an output line")

    assert lines[0] == ("alpha", f"listening on {stack.ports['alpha']} in mode serve")


def test_port_held_by_foreign_listener(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    spec = stack.spec("blocked")
    holder = socket.socket()
    holder.bind(("127.0.0.1", stack.ports["blocked"]))
    holder.listen(1)
    try:
        supervise([spec], ["blocked"])
        record = wait_until(
            lambda: (r := stack.service("blocked"))["error"] and r, "a port error"
        )
    finally:
        holder.close()

    assert record["state"] == "stopped"
    assert (
        f"port {stack.ports['blocked']} is held by pid {os.getpid()}" in record["error"]
    )


def test_healthy_foreign_listener_is_external(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    spec = stack.spec("manual")
    env = dict(os.environ, STANDIN_MANUAL_PORT=str(stack.ports["manual"]))
    by_hand = subprocess.Popen(list(spec.command), env=env, stdout=subprocess.DEVNULL)
    stack.pids.append(by_hand.pid)
    wait_until(
        lambda: process.port_in_use("127.0.0.1", stack.ports["manual"]),
        "by-hand service",
    )

    supervise([spec], ["manual"])
    record = wait_state(stack, "manual", "external")

    assert record["pid"] is None
    assert record["health"]["ok"] is True
    by_hand.kill()
    by_hand.wait(timeout=5)


def test_control_socket_requests(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    supervise([stack.spec("alpha")], [])
    settings = stack.settings

    ping = control.request(settings, {"cmd": "ping"})
    state = control.request(settings, {"cmd": "state"})
    unknown_command = control.request(settings, {"cmd": "dance"})
    unknown_service = control.request(settings, {"cmd": "start", "services": ["nope"]})

    assert ping == {"ok": True, "pid": os.getpid()}
    assert state["state"]["services"]["alpha"]["state"] == "stopped"
    assert state["state"]["supervisor"]["pid"] == os.getpid()
    assert unknown_command["ok"] is False
    assert "dance" in unknown_command["error"]
    assert unknown_service["ok"] is False
    assert "nope" in unknown_service["error"]
    assert (control.socket_path(settings).stat().st_mode & 0o777) == 0o600


def test_shutdown_stops_services_and_exits(stack: Stack) -> None:
    spec = stack.spec("alpha")
    supervisor = Supervisor(
        stack.directory, services=[spec], timing=FAST, start=["alpha"]
    )
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: control.supervisor_alive(stack.settings), "control socket")
        record = wait_state(stack, "alpha", "running")

        reply = control.request(
            stack.settings, {"cmd": "shutdown", "timeout": 2}, timeout=20
        )
        thread.join(timeout=WAIT_TIMEOUT)
    finally:
        supervisor.request_shutdown()
        thread.join(timeout=WAIT_TIMEOUT)

    assert reply == {"ok": True}
    assert not thread.is_alive()
    assert gone(record["pid"])
    assert not control.socket_path(stack.settings).exists()
    final = read_state(stack.settings)
    assert final is not None
    assert final.services["alpha"].state == "stopped"
    assert final.services["alpha"].desired == "stopped"
    with pytest.raises(ControlError):
        control.request(stack.settings, {"cmd": "ping"})


def test_second_supervisor_is_rejected(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    spec = stack.spec("alpha")
    supervise([spec], [])

    with pytest.raises(SupervisorRunningError) as raised:
        Supervisor(stack.directory, services=[spec], timing=FAST).run()

    assert raised.value.pid == os.getpid()
    assert str(raised.value) == f"supervisor already running (pid {os.getpid()})"


def _start_detached(stack: Stack, services_file: Path) -> subprocess.Popen[bytes]:
    """Start the supervisor module as the CLI would, but keep a handle to reap it."""
    env = dict(os.environ, JARVIS_SERVICES_FILE=str(services_file))
    log = open(stack.settings.run_dir / "supervisor.log", "ab")
    with log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jarvisctl.supervisor",
                "--project-dir",
                str(stack.directory),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _standin_processes(stack: Stack) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if str(stack.script) in cmdline:
            found.append(proc)
    return found


def test_new_supervisor_adopts_after_kill(stack: Stack) -> None:
    specs = [stack.spec("alpha"), stack.spec("beta", depends_on=("alpha",))]
    services_file = stack.directory / "services.json"
    write_services_file(services_file, specs)
    stack.settings.run_dir.mkdir(parents=True, exist_ok=True)
    first = _start_detached(stack, services_file)
    stack.pids.append(first.pid)
    try:
        wait_until(lambda: control.supervisor_alive(stack.settings), "first supervisor")
        control.request(stack.settings, {"cmd": "start", "services": ["alpha", "beta"]})
        before = {
            name: wait_state(stack, name, "running") for name in ("alpha", "beta")
        }

        first.kill()
        first.wait(timeout=10)
        kept = read_state(stack.settings)
        alive = {
            name: process.is_alive(record["pid"], record["create_time"])
            for name, record in before.items()
        }

        second = _start_detached(stack, services_file)
        stack.pids.append(second.pid)
        wait_until(
            lambda: control.supervisor_alive(stack.settings), "second supervisor"
        )
        after = {name: wait_state(stack, name, "running") for name in ("alpha", "beta")}
        processes = _standin_processes(stack)

        control.request(stack.settings, {"cmd": "shutdown", "timeout": 3}, timeout=30)
        second_code = second.wait(timeout=WAIT_TIMEOUT)
    finally:
        for handle in (first,):
            if handle.poll() is None:
                handle.kill()

    assert kept is not None
    assert kept.services["alpha"].pid == before["alpha"]["pid"]
    assert alive == {"alpha": True, "beta": True}
    assert after["alpha"]["pid"] == before["alpha"]["pid"]
    assert after["beta"]["pid"] == before["beta"]["pid"]
    assert after["alpha"]["restarts"] == 0
    assert sorted(p.pid for p in processes) == sorted(r["pid"] for r in before.values())
    assert second_code == 0
    assert gone(before["alpha"]["pid"])


def test_two_detached_supervisors_run_once(stack: Stack) -> None:
    services_file = stack.directory / "services.json"
    write_services_file(services_file, [stack.spec("alpha")])
    stack.settings.run_dir.mkdir(parents=True, exist_ok=True)
    first = _start_detached(stack, services_file)
    stack.pids.append(first.pid)
    try:
        wait_until(lambda: control.supervisor_alive(stack.settings), "first supervisor")
        second = _start_detached(stack, services_file)
        stack.pids.append(second.pid)
        second_code = second.wait(timeout=WAIT_TIMEOUT)
        ping = control.request(stack.settings, {"cmd": "ping"})
        control.request(stack.settings, {"cmd": "shutdown"}, timeout=30)
        first_code = first.wait(timeout=WAIT_TIMEOUT)
    finally:
        if first.poll() is None:
            first.kill()

    log_text = (stack.settings.run_dir / "supervisor.log").read_text()
    assert second_code == 0
    assert ping["pid"] == first.pid
    assert f"supervisor already running (pid {first.pid})" in log_text
    assert first_code == 0


def test_start_detached_returns_supervisor_pid(stack: Stack) -> None:
    services_file = stack.directory / "services.json"
    write_services_file(services_file, [stack.spec("alpha")])

    pid = start_detached(stack.settings, services_file)
    stack.pids.append(pid)
    wait_until(lambda: control.supervisor_alive(stack.settings), "detached supervisor")
    ping = control.request(stack.settings, {"cmd": "ping"})
    control.request(stack.settings, {"cmd": "shutdown"}, timeout=30)
    exited = psutil.wait_procs([psutil.Process(pid)], timeout=WAIT_TIMEOUT)[0]

    assert ping["pid"] == pid
    assert [proc.pid for proc in exited] == [pid]
    log_mode = (stack.settings.run_dir / "supervisor.log").stat().st_mode
    assert log_mode & 0o077 == 0


def test_services_file_round_trip(tmp_path: Path) -> None:
    from jarvisctl.supervisor import load_services_file

    spec = ServiceSpec(
        "a", "A_PORT", 1234, "m", "/health", ("b",), None, 5.0, ("x", "y")
    )
    path = tmp_path / "services.json"
    write_services_file(path, [spec])

    assert load_services_file(path) == [spec]
    assert json.loads(path.read_text())[0]["command"] == ["x", "y"]


def test_gateway_restarted_when_config_changes(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    config = stack.directory / "litellm_config.yaml"
    config.write_text((ROOT / "litellm_config.yaml").read_text())
    supervise([stack.spec("gateway")], ["gateway"])
    first = wait_state(stack, "gateway", "running")

    config.write_text(config.read_text() + "\n# edited\n")
    second = wait_until(
        lambda: (
            (r := stack.service("gateway"))["state"] == "running"
            and r["pid"] != first["pid"]
            and r
        ),
        "gateway to run again",
    )

    assert second["restarts"] == 0


def test_gateway_kept_when_changed_config_is_invalid(
    stack: Stack,
    supervise: Callable[..., Supervisor],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = stack.directory / "litellm_config.yaml"
    config.write_text((ROOT / "litellm_config.yaml").read_text())
    supervise([stack.spec("gateway")], ["gateway"])
    first = wait_state(stack, "gateway", "running")

    with caplog.at_level(logging.ERROR, logger="jarvisctl.supervisor"):
        config.write_text(config.read_text() + "\nagents_typo: []\n")
        wait_until(
            lambda: "changed config is invalid" in caplog.text, "the config check"
        )

    assert "agents_typo" in caplog.text
    assert stack.service("gateway")["pid"] == first["pid"]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["a", "x ERROR y: Failed to start b: bad", "c", ""], "Failed to start b: bad"),
        (["first", "last line", "  "], "last line"),
        ([], None),
    ],
)
def test_startup_error_picks_line(lines: list[str], expected: str | None) -> None:
    from jarvisctl.supervisor import _startup_error

    assert _startup_error(lines) == expected


def test_gateway_restart_rejected_when_invalid(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    config = stack.directory / "litellm_config.yaml"
    config.write_text((ROOT / "litellm_config.yaml").read_text())
    with open(stack.directory / ".env", "a") as env_file:
        env_file.write("LITELLM_MASTER_KEY=sk-test-0123456789abcdef\n")
    supervise([stack.spec("gateway")], ["gateway"])
    first = wait_state(stack, "gateway", "running")

    config.write_text(config.read_text() + "\nagents_typo: []\n")
    named = control.request(stack.settings, {"cmd": "restart", "services": ["gateway"]})
    everything = control.request(stack.settings, {"cmd": "restart", "services": []})
    time.sleep(FAST.tick * 5)
    after = stack.service("gateway")

    assert named["ok"] is False
    assert named["error"].startswith("gateway not restarted: ")
    assert "agents_typo" in named["error"]
    assert "\n" not in named["error"]
    assert everything["ok"] is False
    assert after["state"] == "running"
    assert after["pid"] == first["pid"]


def test_blocked_gateway_retried_on_start(
    stack: Stack, supervise: Callable[..., Supervisor]
) -> None:
    # Without a command the catalog's gateway launch is used. It fails here
    # before anything is spawned, first on the master key and then on the config.
    port_key = "STANDIN_GATEWAY_PORT"
    with open(stack.directory / ".env", "a") as env_file:
        env_file.write(f"{port_key}={free_port()}\n")
    spec = ServiceSpec("gateway", port_key, 0, "unused", "/health")
    supervise([spec], ["gateway"])
    missing_key = wait_until(
        lambda: (r := stack.service("gateway"))["error"] and r, "the first failure"
    )

    with open(stack.directory / ".env", "a") as env_file:
        env_file.write("LITELLM_MASTER_KEY=sk-test-0123456789abcdef\n")
    control.request(stack.settings, {"cmd": "start", "services": ["gateway"]})
    missing_config = wait_until(
        lambda: (
            (r := stack.service("gateway"))["error"]
            and r["error"] != missing_key["error"]
            and r
        ),
        "a second attempt",
    )

    assert missing_key["state"] == "stopped"
    assert missing_key["error"].startswith(
        "failed to build the command: missing LITELLM_MASTER_KEY"
    )
    assert missing_config["state"] == "stopped"
    assert missing_config["error"].startswith("failed to build the command: ")
    assert "litellm_config.yaml" in missing_config["error"]


def test_dependency_levels_of_catalog() -> None:
    from jarvisctl.config import SERVICES
    from jarvisctl.supervisor import _dependency_levels

    levels = [[spec.name for spec in level] for level in _dependency_levels(SERVICES)]

    assert levels == [
        ["auth"],
        ["registry", "gateway"],
        ["tickets", "finops", "oxygen"],
    ]
