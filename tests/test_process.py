"""Tests of spawning services and stopping process groups, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from jarvisctl import process
from jarvisctl.config import ServiceSpec, Settings, service_spec

# Bound on waiting for a test process to come up.
WAIT_TIMEOUT = 10.0
IGNORE_TERM = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(300)\n"
)


def gone(pid: int) -> bool:
    """Tell whether `pid` exited; a zombie not yet reaped counts as exited."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by a test; each is killed with its group afterwards."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for popen in processes:
        for signum in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.killpg(popen.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass
        popen.wait(timeout=WAIT_TIMEOUT)


def start_session(
    argv: list[str], started: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    popen = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    started.append(popen)
    return popen


def create_time(pid: int) -> float:
    return psutil.Process(pid).create_time()


def test_launch_command_uses_explicit_command(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, env={"EXTRA_KEY": "value"})
    spec = ServiceSpec(
        "x", "X_PORT", 1, "unused", "/health", command=("prog", "--flag")
    )

    argv, env = process.launch_command(settings, spec)

    assert argv == ["prog", "--flag"]
    assert env["EXTRA_KEY"] == "value"
    assert env["JARVIS_PROJECT_DIR"] == str(tmp_path)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"] == os.environ["PATH"]


def test_launch_command_runs_module(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, env={})

    argv, _env = process.launch_command(settings, service_spec("auth"))

    assert argv == [sys.executable, "-m", "services.auth"]


def test_service_port_rejects_invalid_value(tmp_path: Path) -> None:
    spec = ServiceSpec("x", "X_PORT", 1234, "unused", "/health")

    with pytest.raises(Exception) as raised:
        process.service_port(
            Settings(project_dir=tmp_path, env={"X_PORT": "abc"}), spec
        )

    assert "invalid X_PORT" in str(raised.value)
    assert process.service_port(Settings(project_dir=tmp_path, env={}), spec) == 1234


def test_stop_skips_stale_pid(started: list[subprocess.Popen[bytes]]) -> None:
    sleeper = start_session(["sleep", "300"], started)
    real_time = create_time(sleeper.pid)

    stopped = process.stop_process_group(sleeper.pid, real_time - 100.0, timeout=1.0)

    assert stopped is False
    assert sleeper.poll() is None
    assert psutil.Process(sleeper.pid).status() != psutil.STATUS_ZOMBIE


def test_stop_skips_own_pid_with_wrong_time() -> None:
    own = os.getpid()

    stopped = process.stop_process_group(own, create_time(own) + 50.0, timeout=1.0)

    assert stopped is False


def test_stop_skips_pid_without_create_time(
    started: list[subprocess.Popen[bytes]],
) -> None:
    sleeper = start_session(["sleep", "300"], started)

    stopped = process.stop_process_group(sleeper.pid, None, timeout=1.0)

    assert stopped is False
    assert sleeper.poll() is None


def test_stop_kills_group_with_children(started: list[subprocess.Popen[bytes]]) -> None:
    leader = start_session(
        ["sh", "-c", "sleep 300 & sleep 300 & echo up; wait"], started
    )
    assert leader.stdout is not None
    assert leader.stdout.readline() == b"up\n"
    children = psutil.Process(leader.pid).children(recursive=True)
    assert len(children) == 2

    stopped = process.stop_process_group(
        leader.pid, create_time(leader.pid), timeout=5.0
    )

    assert stopped is True
    assert leader.wait(timeout=WAIT_TIMEOUT) == -signal.SIGTERM
    for child in children:
        assert gone(child.pid)


def test_stop_escalates_to_sigkill(started: list[subprocess.Popen[bytes]]) -> None:
    stubborn = start_session([sys.executable, "-c", IGNORE_TERM], started)
    assert stubborn.stdout is not None
    assert stubborn.stdout.readline() == b"ready\n"

    stopped = process.stop_process_group(
        stubborn.pid, create_time(stubborn.pid), timeout=0.3
    )

    assert stopped is True
    assert stubborn.wait(timeout=WAIT_TIMEOUT) == -signal.SIGKILL


def test_stop_continues_sigstopped_process(
    started: list[subprocess.Popen[bytes]],
) -> None:
    sleeper = start_session(["sleep", "300"], started)
    os.kill(sleeper.pid, signal.SIGSTOP)

    stopped = process.stop_process_group(
        sleeper.pid, create_time(sleeper.pid), timeout=5.0
    )

    assert stopped is True
    assert sleeper.wait(timeout=WAIT_TIMEOUT) == -signal.SIGTERM


def test_stop_kills_group_left_by_dead_leader(
    started: list[subprocess.Popen[bytes]],
) -> None:
    leader = start_session(["sh", "-c", "sleep 300 & echo $!"], started)
    assert leader.stdout is not None
    orphan_pid = int(leader.stdout.readline())
    leader_time = create_time(leader.pid)
    leader.wait(timeout=WAIT_TIMEOUT)
    assert not gone(orphan_pid)

    stopped = process.stop_process_group(leader.pid, leader_time, timeout=5.0)

    assert stopped is True
    assert gone(orphan_pid)


def test_is_same_process_checks_create_time() -> None:
    own = os.getpid()

    assert process.is_same_process(own, create_time(own)) is True
    assert process.is_same_process(own, create_time(own) + 1.0) is False
    assert process.is_same_process(None, 1.0) is False


def test_spawn_starts_new_session(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    read_fd, write_fd = process.open_log_pipe(tmp_path / "svc.pipe")
    try:
        popen = process.spawn(
            ["sh", "-c", "echo hello; sleep 300"], dict(os.environ), tmp_path, write_fd
        )
    finally:
        os.close(write_fd)
    started.append(popen)

    with os.fdopen(read_fd, "rb") as stream:
        first_line = stream.readline()
        assert first_line == b"hello\n"
        assert os.getpgid(popen.pid) == popen.pid
        assert os.getsid(popen.pid) == popen.pid


def test_port_in_use_sees_listener() -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        assert process.port_in_use("127.0.0.1", port) is True
        assert process.find_listener_pid(port) == os.getpid()
    deadline = time.monotonic() + WAIT_TIMEOUT
    while process.port_in_use("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.port_in_use("127.0.0.1", port) is False


def test_launch_turns_off_sdk_tracing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(process.A2A_TRACING_ENV, raising=False)
    spec = service_spec("tickets")

    _argv, env = process.launch_command(Settings(tmp_path, {}), spec)
    assert env[process.A2A_TRACING_ENV] == "false"

    chosen = Settings(tmp_path, {process.A2A_TRACING_ENV: "true"})
    _argv, env = process.launch_command(chosen, spec)
    assert env[process.A2A_TRACING_ENV] == "true"
