"""Tests of listener lookup and freeing ports, against real sockets and processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace

import psutil
import pytest

from jarvisctl.errors import ServiceError
from jarvisctl.ports import find_listener, find_listeners, free_port, is_port_taken

# Seconds a test process gets to open its listening socket.
LISTEN_TIMEOUT = 15.0

# A process that listens on a port given as argv[1] until it is killed.
LISTENER_SCRIPT = """
import socket, sys, time
sock = socket.socket()
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
while True:
    time.sleep(1)
"""


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_listener(port: int, pid: int) -> None:
    deadline = time.monotonic() + LISTEN_TIMEOUT
    while time.monotonic() < deadline:
        listener = find_listener(port)
        if listener is not None and listener.pid == pid:
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} did not listen on {port} in time")


@pytest.fixture
def listening_process() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = unused_port()
    process = subprocess.Popen(
        [sys.executable, "-c", LISTENER_SCRIPT, str(port)],
        start_new_session=True,
    )
    try:
        wait_for_listener(port, process.pid)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_find_listener_own_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        listener = find_listener(port)
    assert listener is not None
    assert listener.pid == os.getpid()
    assert listener.port == port
    assert listener.create_time == psutil.Process().create_time()
    assert listener.name == psutil.Process().name()


def test_find_listener_free_port() -> None:
    assert find_listener(unused_port()) is None


def test_find_listener_ignores_unlistened_bind() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert find_listener(port) is None


def test_find_listeners_several_ports(listening_process) -> None:
    process, port = listening_process
    free = unused_port()
    found = find_listeners([port, free])
    assert set(found) == {port}
    assert found[port].pid == process.pid
    assert "-c" in found[port].cmdline


def test_listener_label_names_pid() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        listener = find_listener(sock.getsockname()[1])
    assert listener is not None
    assert listener.label == f"pid {os.getpid()} ({listener.name})"


def test_is_port_taken_tracks_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert is_port_taken(port)
    assert not is_port_taken(port)


def test_free_port_stops_listener(listening_process) -> None:
    process, port = listening_process
    listener = find_listener(port)
    assert listener is not None
    free_port(listener, timeout=5)
    assert process.wait(timeout=10) is not None
    assert find_listener(port) is None


def test_free_port_rejects_stale_record(listening_process) -> None:
    process, port = listening_process
    listener = find_listener(port)
    assert listener is not None
    stale = replace(listener, create_time=(listener.create_time or 0) - 100)
    with pytest.raises(ServiceError, match="no longer held"):
        free_port(stale, timeout=5)
    assert process.poll() is None


def test_free_port_rejects_other_pid(listening_process) -> None:
    process, port = listening_process
    listener = find_listener(port)
    assert listener is not None
    wrong = replace(listener, pid=os.getpid())
    with pytest.raises(ServiceError):
        free_port(wrong, timeout=5)
    assert process.poll() is None


def test_free_port_unknown_pid() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        listener = find_listener(sock.getsockname()[1])
    assert listener is not None
    with pytest.raises(ServiceError, match="cannot inspect"):
        free_port(replace(listener, pid=None))
