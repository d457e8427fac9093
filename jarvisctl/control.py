"""The supervisor's control socket: one JSON request and one JSON reply per connection.

A client connects to `<run dir>/supervisor.sock`, sends one JSON object and a
newline, reads one JSON object and a newline, and closes. Unix socket paths
are limited to 107 bytes, so a longer path is reached through
`/proc/self/fd/<fd of the run dir>/supervisor.sock` (Linux only).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jarvisctl.config import Settings
from jarvisctl.errors import ControlError

SOCKET_NAME = "supervisor.sock"
SOCKET_MODE = 0o600
# sun_path is 108 bytes long, including the terminating NUL.
MAX_SOCKET_PATH = 107
# Largest request or reply accepted; a full state object is a few kilobytes.
MAX_MESSAGE_BYTES = 1024 * 1024
# A client that connects and sends nothing is dropped after this many seconds.
SERVER_READ_TIMEOUT = 5.0

Handler = Callable[[dict[str, Any]], dict[str, Any]]

logger = logging.getLogger(__name__)


def socket_path(settings: Settings) -> Path:
    return settings.run_dir / SOCKET_NAME


@contextlib.contextmanager
def _short_address(path: Path) -> Iterator[str]:
    """Yield an address for `path` that fits in sun_path."""
    if len(os.fsencode(str(path))) <= MAX_SOCKET_PATH:
        yield str(path)
        return
    directory_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory_fd}/{path.name}"
    finally:
        os.close(directory_fd)


def _read_message(conn: socket.socket) -> dict[str, Any]:
    buffer = b""
    while not buffer.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        buffer += chunk
        if len(buffer) > MAX_MESSAGE_BYTES:
            raise ValueError(f"message longer than {MAX_MESSAGE_BYTES} bytes")
    message = json.loads(buffer.decode("utf-8"))
    if not isinstance(message, dict):
        raise ValueError("message is not a JSON object")
    return message


def _send_message(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall(json.dumps(message).encode("utf-8") + b"\n")


def request(
    settings: Settings, payload: dict[str, Any], timeout: float = 5.0
) -> dict[str, Any]:
    """Send `payload` to the supervisor and return its reply.

    Raises ControlError when no supervisor responds within `timeout` seconds.
    A reply with `"ok": false` is returned as is, for the caller to report.
    """
    path = socket_path(settings)
    if not path.exists():
        raise ControlError(f"no supervisor is running: {path} does not exist")
    try:
        with _short_address(path) as address:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(timeout)
                conn.connect(address)
                _send_message(conn, payload)
                return _read_message(conn)
    except (ConnectionRefusedError, FileNotFoundError):
        raise ControlError(
            f"no supervisor is running: nothing listens on {path}"
        ) from None
    except TimeoutError:
        raise ControlError(
            f"supervisor did not respond to {payload.get('cmd')!r} within {timeout:g} s"
        ) from None
    except (OSError, ValueError) as error:
        raise ControlError(
            f"supervisor request {payload.get('cmd')!r} failed: {error}"
        ) from None


def supervisor_alive(settings: Settings) -> bool:
    """Tell whether a supervisor responds to `ping` on the project's socket."""
    try:
        reply = request(settings, {"cmd": "ping"}, timeout=2.0)
    except ControlError:
        return False
    return bool(reply.get("ok"))


class ControlServer:
    """Accept connections on a unix socket and reply to each through `handler`.

    Each connection is served in its own thread, so a slow request such as
    `shutdown` does not block `state` polls made while it runs.
    """

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._clients: set[threading.Thread] = set()
        self._clients_lock = threading.Lock()

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The caller holds the supervisor lock, so a socket file left here
        # belongs to a supervisor that died and can be removed.
        self.path.unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            with _short_address(self.path) as address:
                server.bind(address)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, SOCKET_MODE)
        server.listen(16)
        self._socket = server
        self._thread = threading.Thread(
            target=self._accept_loop, name="control-server", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._socket.close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        # Let replies under way, such as the one to `shutdown`, reach their client.
        with self._clients_lock:
            clients = list(self._clients)
        for client in clients:
            client.join(timeout=2.0)
        self.path.unlink(missing_ok=True)

    def _accept_loop(self) -> None:
        assert self._socket is not None
        while not self._closing.is_set():
            try:
                conn, _address = self._socket.accept()
            except OSError:
                if self._closing.is_set():
                    return
                logger.exception("Failed to accept a control connection")
                continue
            client = threading.Thread(
                target=self._serve, args=(conn,), name="control-client", daemon=True
            )
            with self._clients_lock:
                self._clients.add(client)
            client.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._answer(conn)
        finally:
            with self._clients_lock:
                self._clients.discard(threading.current_thread())

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(SERVER_READ_TIMEOUT)
            try:
                message = _read_message(conn)
            except (OSError, ValueError) as error:
                reply = {"ok": False, "error": f"invalid request: {error}"}
            else:
                try:
                    reply = self.handler(message)
                except Exception as error:  # noqa: BLE001 - reported to the client
                    logger.exception(
                        "Failed to handle control request %r", message.get("cmd")
                    )
                    reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            try:
                conn.settimeout(None)
                _send_message(conn, reply)
            except OSError as error:
                logger.debug("Failed to send a control reply: %s", error)
