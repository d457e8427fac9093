"""Start service processes in their own sessions and stop whole process groups.

Every service runs as the leader of a new session, so its process group id is
its pid and one signal to the group reaches the workers it forks. A pid read
from the state file is only signalled after its create time matches the one
recorded at start, because the kernel reuses pids.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil

from jarvisctl.config import ServiceSpec, Settings, read_port

# psutil reports create times rounded to the clock tick (10 ms on Linux), and a
# JSON round trip keeps them exact. The tolerance covers the rounding.
CREATE_TIME_TOLERANCE = 0.05
# Grace after SIGKILL for the kernel to reap the group, before we report leftovers.
KILL_WAIT = 3.0

# a2a-sdk 1.3 reads this once at import to switch its tracing spans on or off.
A2A_TRACING_ENV = "OTEL_INSTRUMENTATION_A2A_SDK_ENABLED"

logger = logging.getLogger(__name__)


def process_create_time(pid: int) -> float | None:
    """Return the create time of `pid`, or None when no such process exists."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return None


def is_same_process(pid: int | None, create_time: float | None) -> bool:
    """Tell whether `pid` is alive and is the process started at `create_time`."""
    if not pid or create_time is None:
        return False
    actual = process_create_time(pid)
    if actual is None:
        return False
    return abs(actual - create_time) <= CREATE_TIME_TOLERANCE


def is_alive(pid: int, create_time: float | None) -> bool:
    """Tell whether the process runs and is not a zombie waiting to be reaped."""
    if not is_same_process(pid, create_time):
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def service_port(settings: Settings, spec: ServiceSpec) -> int:
    """Return the port of `spec`, which may be a stand-in outside the catalog."""
    return read_port(settings.env, spec)


def launch_command(
    settings: Settings, spec: ServiceSpec
) -> tuple[list[str], dict[str, str]]:
    """Return the argv and environment that start `spec`."""
    env = dict(os.environ)
    env.update(settings.env)
    env["JARVIS_PROJECT_DIR"] = str(settings.project_dir)
    env["PYTHONUNBUFFERED"] = "1"
    # The stack configures no OpenTelemetry exporter, so the a2a SDK's spans
    # (about 118 per request) only cost CPU: about 0.3 ms per request measured
    # by bench/run.py with a2a-sdk 1.3. Setting it to true in .env turns them on.
    env.setdefault(A2A_TRACING_ENV, "false")
    if spec.command:
        return list(spec.command), env
    if spec.name == "gateway":
        from jarvisctl.gateway import gateway_launch

        argv, extra_env = gateway_launch(settings)
        env.update(extra_env)
        return list(argv), env
    return [sys.executable, "-m", spec.module], env


def spawn(
    argv: list[str], env: dict[str, str], cwd: Path, stdout: int
) -> subprocess.Popen[bytes]:
    """Start `argv` as the leader of a new session, output to the `stdout` fd."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _group_members(pgid: int, born_after: float | None) -> list[psutil.Process]:
    """List processes of group `pgid`, optionally only those born after a time."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) != pgid:
                continue
            if (
                born_after is not None
                and proc.create_time() < born_after - CREATE_TIME_TOLERANCE
            ):
                continue
        except (ProcessLookupError, psutil.Error):
            continue
        members.append(proc)
    return members


def stop_process_group(pid: int, create_time: float | None, timeout: float) -> bool:
    """Stop the process group led by `pid`: SIGTERM, wait `timeout` s, SIGKILL.

    Descendants that left the group are collected first and treated alike.
    Returns False without sending any signal when `pid` is not the process
    started at `create_time`, because the pid then belongs to someone else.
    When the leader has exited but members of its group remain, only members
    born after `create_time` are signalled.
    """
    if create_time is None:
        logger.warning("Skipped stopping pid %d: no create time recorded", pid)
        return False
    targets: list[psutil.Process] = []
    leader_alive = is_same_process(pid, create_time)
    if leader_alive:
        leader = psutil.Process(pid)
        targets.append(leader)
        try:
            targets.extend(leader.children(recursive=True))
        except psutil.Error:
            pass
    elif process_create_time(pid) is not None:
        logger.warning(
            "Skipped stopping pid %d: it is a different process than the one recorded",
            pid,
        )
        return False
    # Signal the group as a whole only through its live leader: once the leader
    # is gone, the members checked by create time are signalled one by one.
    own_group = os.getpgrp()
    group = pid if leader_alive and pid != own_group else None
    members = _group_members(pid, create_time) if pid != own_group else []
    known = {proc.pid for proc in targets}
    targets.extend(proc for proc in members if proc.pid not in known)
    if not targets:
        return True

    _signal_all(group, targets, signal.SIGTERM)
    # A SIGSTOPped process only acts on SIGTERM once it runs again.
    _signal_all(group, targets, signal.SIGCONT)
    alive = _wait_gone(targets, timeout)
    if alive:
        logger.warning(
            "Killed process group %d: %d process(es) still running %g s after SIGTERM",
            pid,
            len(alive),
            timeout,
        )
        _signal_all(group, alive, signal.SIGKILL)
        alive = _wait_gone(alive, KILL_WAIT)
    for proc in alive:
        logger.error("Failed to stop pid %d of process group %d", proc.pid, pid)
    return not alive


def _wait_gone(targets: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until the targets exit and return those still running.

    Zombies count as gone and are not reaped here: psutil.wait_procs would
    reap our own children, and subprocess.Popen would then lose their exit code.
    """
    deadline = time.monotonic() + timeout
    while True:
        alive = [proc for proc in targets if _running(proc)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_all(pgid: int | None, targets: list[psutil.Process], signum: int) -> None:
    if pgid is not None:
        try:
            os.killpg(pgid, signum)
        except (ProcessLookupError, PermissionError):
            pass
    for proc in targets:
        try:
            # psutil checks the create time again before it sends the signal.
            proc.send_signal(signum)
        except psutil.Error:
            pass


def wait_for_exit(pid: int, create_time: float | None, timeout: float) -> bool:
    """Wait until `pid` is gone or a zombie; True when it exited in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid, create_time):
            return True
        time.sleep(0.05)
    return not is_alive(pid, create_time)


def port_in_use(host: str, port: int) -> bool:
    """Tell whether something accepts TCP connections on `host:port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def find_listener_pid(port: int) -> int | None:
    """Return the pid listening on TCP `port`, when psutil is allowed to see it."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid
    return None


def describe_pid(pid: int | None) -> str:
    """Return `pid N (name)` for messages, or `an unknown process`."""
    if pid is None:
        return "an unknown process"
    try:
        name = psutil.Process(pid).name()
    except psutil.Error:
        return f"pid {pid}"
    return f"pid {pid} ({name})"


def is_descendant(pid: int, ancestor: int) -> bool:
    """Tell whether `pid` is `ancestor` or one of its descendants."""
    if pid == ancestor:
        return True
    try:
        return any(parent.pid == ancestor for parent in psutil.Process(pid).parents())
    except psutil.Error:
        return False


def open_log_pipe(path: Path) -> tuple[int, int]:
    """Open the named pipe at `path`, creating it, and return (read fd, write fd).

    A service writes its output into a named pipe rather than an anonymous
    one, so that a new supervisor can open the pipe again and keep reading
    from services it adopts after the previous supervisor died. Both ends are
    blocking; the caller closes the write end once a child inherited it.
    """
    if path.exists() and not stat.S_ISFIFO(path.stat().st_mode):
        path.unlink()
    if not path.exists():
        os.mkfifo(path, 0o600)
    read_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(read_fd, True)
    write_fd = os.open(path, os.O_WRONLY)
    return read_fd, write_fd
