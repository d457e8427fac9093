"""Find which process listens on a TCP port, and stop it on request.

Every lookup goes through psutil at the moment it is needed, and a process is
only signalled after psutil confirms that the same process (same pid and start
time) still holds the port.
"""

from __future__ import annotations

import logging
import signal
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from jarvisctl.errors import ServiceError

# Seconds a stopped listener gets between SIGTERM and SIGKILL.
DEFAULT_STOP_TIMEOUT = 10.0
# Seconds to wait for the kernel to reap a process after SIGKILL.
KILL_WAIT = 5.0
# Seconds between two checks whether a signalled process has exited.
WAIT_INTERVAL = 0.05

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listener:
    """A process that holds a listening TCP socket."""

    port: int
    address: str
    # None when the socket belongs to a process we may not inspect.
    pid: int | None
    name: str | None = None
    cmdline: tuple[str, ...] = ()
    create_time: float | None = None

    @property
    def label(self) -> str:
        """Short description for messages, such as `pid 4121 (python3)`."""
        if self.pid is None:
            return "an unknown process"
        return f"pid {self.pid} ({self.name or '?'})"


def find_listener(port: int) -> Listener | None:
    """Return the process listening on `port` on any address, or None."""
    return find_listeners([port]).get(port)


def find_listeners(ports: Iterable[int]) -> dict[int, Listener]:
    """Return the listeners of several ports with one scan of the socket table."""
    wanted = set(ports)
    found: dict[int, Listener] = {}
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        # Without the right to read other processes' sockets, a bind test still
        # tells whether the port is taken, but not by whom.
        taken = [port for port in wanted if is_port_taken(port)]
        return {port: Listener(port, "", None) for port in taken}
    for connection in connections:
        if connection.status != psutil.CONN_LISTEN or not connection.laddr:
            continue
        port = connection.laddr.port
        if port not in wanted:
            continue
        previous = found.get(port)
        if previous is not None and previous.pid is not None:
            continue
        found[port] = _describe(port, connection.laddr.ip, connection.pid)
    return found


def _describe(port: int, address: str, pid: int | None) -> Listener:
    if pid is None:
        return Listener(port, address, None)
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            name = process.name()
            create_time = process.create_time()
            try:
                cmdline = tuple(process.cmdline())
            except psutil.AccessDenied:
                cmdline = ()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return Listener(port, address, pid)
    return Listener(port, address, pid, name, cmdline, create_time)


def is_port_taken(port: int, host: str = "127.0.0.1") -> bool:
    """Return True when binding `host:port` fails because it is in use."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def is_same_listener(expected: Listener) -> bool:
    """Return True when `expected`'s process still holds its port right now."""
    current = find_listener(expected.port)
    if current is None or current.pid is None:
        return False
    return current.pid == expected.pid and current.create_time == expected.create_time


def free_port(listener: Listener, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
    """Stop the process behind `listener` and its children: SIGTERM, then SIGKILL.

    Raises ServiceError when the port is now held by another process (or by
    none we can see), so a stale listener record never leads to a signal.
    """
    if listener.pid is None:
        raise ServiceError(
            f"port {listener.port} is held by a process we cannot inspect; "
            "stop it yourself or rerun as its user"
        )
    if not is_same_listener(listener):
        raise ServiceError(
            f"port {listener.port} is no longer held by {listener.label}; "
            "run `jarvisctl ports` again"
        )
    try:
        process = psutil.Process(listener.pid)
        children = process.children(recursive=True)
    except psutil.NoSuchProcess:
        return
    targets = [process, *children]
    _signal_all(targets, signal.SIGTERM)
    alive = _wait_gone(targets, timeout)
    if alive:
        logger.warning(
            "Killing %d process(es) on port %d after %.0f s",
            len(alive),
            listener.port,
            timeout,
        )
        _signal_all(alive, signal.SIGKILL)
        alive = _wait_gone(alive, KILL_WAIT)
    if alive:
        pids = ", ".join(str(process.pid) for process in alive)
        raise ServiceError(f"could not stop pid {pids} on port {listener.port}")
    logger.info("Stopped %s on port %d", listener.label, listener.port)


def _wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until each process has exited; return those still running.

    A zombie counts as gone: it holds no socket, and only its parent (which
    may not be us) can reap it.
    """
    deadline = time.monotonic() + timeout
    alive = processes
    while True:
        alive = [process for process in alive if _is_running(process)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(WAIT_INTERVAL)


def _is_running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal_all(processes: list[psutil.Process], signum: signal.Signals) -> None:
    for process in processes:
        try:
            # psutil checks the start time before it signals, so a pid reused by
            # a new process is never hit.
            process.send_signal(signum)
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            raise ServiceError(
                f"permission denied to signal pid {process.pid}; stop it yourself"
            ) from None
