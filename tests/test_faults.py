"""Fault injection against the real stack run by `jarvisctl` as a subprocess.

One stack is started once for the module on free loopback ports. It takes
every fault in turn: kill -9 of each service under load, a SIGSTOPped agent, a
killed supervisor, a deleted log file, a corrupted state file and a full run
directory. The tests run in file order and each leaves the stack healthy for
the next. Tests at the end need no stack: unusable run directories and a
hand-edited `.env`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from conftest import PORT_KEYS, ROOT, find_records, free_port

# `up` waits for the gateway's cold start (8-15 s alone on 2 cores, more when
# loaded); this bounds the whole command.
UP_TIMEOUT = 240
# Bound of any other CLI call. `status` itself probes with a 1 s timeout.
COMMAND_TIMEOUT = 60
# Timeout of each ticket request of the load client. A request to a stopped or
# killed service must end with an error well before this.
CLIENT_TIMEOUT = 15.0
# The load client stops after this many requests even when the test does not.
MAX_CLIENT_REQUESTS = 1500
# Bound of the wait for the supervisor to bring a killed service back: the
# gateway's restart includes its cold start.
RECOVERY_TIMEOUT = 150.0
# Size of the tmpfs holding the run directory: logs, SQLite files and state
# of one test run stay far below it.
RUN_DIR_TMPFS_SIZE = "64m"
STACK_SERVICES = tuple(PORT_KEYS)
TICKET_ID = re.compile(r"\*\*(\d{5,})\*\*")


def mount_tmpfs(path: Path, size: str) -> bool:
    """Mount a tmpfs of `size` on `path`; False when this machine does not allow it."""
    if not shutil.which("mount"):
        return False
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        timeout=10,
    )
    return result.returncode == 0


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10)


def alive(pid: int) -> bool:
    """True for a live process; a zombie waiting for its parent counts as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def project_processes(directory: Path) -> dict[int, str]:
    """Return pid -> command line of every process started for `directory`."""
    found = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.environ().get("JARVIS_PROJECT_DIR") != str(directory):
                continue
        except psutil.Error:
            continue
        found[proc.pid] = " ".join(proc.info["cmdline"] or [])
    return found


def message_body(text: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "message/send",
        "params": {
            "message": {
                "role": "user",
                "messageId": secrets.token_hex(8),
                "parts": [{"kind": "text", "text": text}],
            }
        },
    }


@dataclass
class Stack:
    """The module's stack: its project, environment and every CLI output seen."""

    directory: Path
    env: dict[str, str]
    run_dir: Path
    on_tmpfs: bool
    outputs: list[str] = field(default_factory=list)

    def cli(
        self, *args: str, stdin: str | None = None, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run `python -m jarvisctl ARGS` and keep its output for the secret scan."""
        result = subprocess.run(
            [sys.executable, "-m", "jarvisctl", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.outputs.append(result.stdout + result.stderr)
        return result

    def port(self, service: str) -> int:
        return int(self.env[PORT_KEYS[service]])

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service)}"

    def dotenv(self) -> dict[str, str]:
        from jarvisctl.envfile import read_env

        return read_env(self.directory / ".env")

    def state(self) -> dict[str, Any]:
        """Read state.json, retrying while a concurrent write leaves it unreadable."""
        path = self.run_dir / "state.json"
        for _attempt in range(20):
            try:
                return json.loads(path.read_text())
            except (OSError, ValueError):
                time.sleep(0.1)
        raise AssertionError(f"unreadable state file {path}")

    def service(self, name: str) -> dict[str, Any]:
        return self.state()["services"][name]

    def ask_gateway(
        self, text: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        master_key = self.dotenv()["LITELLM_MASTER_KEY"]
        return httpx.post(
            f"{self.url('gateway')}/a2a/tickets",
            json=message_body(text),
            headers={"Authorization": f"Bearer {master_key}", **(headers or {})},
            timeout=CLIENT_TIMEOUT,
        )

    def wait_healthy(self, name: str, not_pid: int | None = None) -> dict[str, Any]:
        """Wait until `name` runs healthy under a pid other than `not_pid`."""
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        entry: dict[str, Any] = {}
        while time.monotonic() < deadline:
            entry = self.service(name)
            health = entry.get("health") or {}
            if (
                entry["state"] == "running"
                and health.get("ok")
                and entry["pid"] is not None
                and entry["pid"] != not_pid
            ):
                return entry
            time.sleep(0.25)
        raise AssertionError(f"{name} not healthy again: {entry}")

    def ticket_ids(self) -> set[int]:
        """Return the ids in the tickets agent's SQLite file, read directly."""
        connection = sqlite3.connect(self.run_dir / "tickets.db", timeout=10)
        try:
            rows = connection.execute("SELECT id FROM tickets").fetchall()
        finally:
            connection.close()
        return {int(row[0]) for row in rows}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A fresh project brought up with `jarvisctl up`, JARVIS_BIND_HOST unset."""
    directory = tmp_path_factory.mktemp("fault-stack")
    shutil.copy(ROOT / ".env.template", directory / ".env.template")
    shutil.copy(ROOT / "litellm_config.yaml", directory / "litellm_config.yaml")
    run_dir = directory / "run"
    run_dir.mkdir()
    on_tmpfs = os.geteuid() == 0 and mount_tmpfs(run_dir, RUN_DIR_TMPFS_SIZE)
    env = dict(os.environ)
    for key in ("JWT_TOKEN", "JWT_SECRET_KEY", "LITELLM_MASTER_KEY", "NO_COLOR"):
        env.pop(key, None)
    env.pop("JARVIS_BIND_HOST", None)
    env.update({key: str(free_port()) for key in PORT_KEYS.values()})
    env.update(
        JARVIS_PROJECT_DIR=str(directory),
        JARVIS_RUN_DIR=str(run_dir),
        JARVIS_ADMIN_PASSWORD="admin-" + secrets.token_hex(8),
        JARVIS_DEMO_PASSWORD="demo-" + secrets.token_hex(8),
        JARVIS_STOP_TIMEOUT="5",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        FINOPS_DATA="",
        NO_COLOR="1",
    )
    result = Stack(directory, env, run_dir, on_tmpfs)
    try:
        init = result.cli("init")
        assert init.returncode == 0, init.stdout + init.stderr
        # Run with the bind host unset, so the default is what gets tested.
        env_file = directory / ".env"
        lines = env_file.read_text().splitlines(keepends=True)
        env_file.write_text(
            "".join(line for line in lines if not line.startswith("JARVIS_BIND_HOST"))
        )
        up = result.cli("up", timeout=UP_TIMEOUT)
        assert up.returncode == 0, up.stdout + up.stderr
        yield result
    finally:
        result.cli("down", timeout=COMMAND_TIMEOUT * 2)
        # Whatever `down` missed, stop by pid what was started for this project.
        for pid in project_processes(directory):
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        if on_tmpfs:
            unmount(run_dir)


# Where the stack listens.


def test_services_listen_on_loopback_only(stack: Stack) -> None:
    pids = set(project_processes(stack.directory))
    addresses = {}
    for connection in psutil.net_connections(kind="inet"):
        if connection.status == psutil.CONN_LISTEN and connection.pid in pids:
            addresses[connection.laddr.port] = connection.laddr.ip

    for name in STACK_SERVICES:
        assert addresses.get(stack.port(name)) == "127.0.0.1", (name, addresses)
    assert set(addresses.values()) == {"127.0.0.1"}


# kill -9 of every service while a client keeps creating tickets.


@dataclass
class Attempt:
    """One ticket request of the load client and how it ended."""

    outcome: str
    ticket_id: int | None = None
    detail: str = ""


class TicketClient(threading.Thread):
    """Create tickets through the gateway until stopped, recording every outcome."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(name="ticket-client", daemon=True)
        self.stack = stack
        self.stop = threading.Event()
        self.attempts: list[Attempt] = []

    def run(self) -> None:
        for number in range(MAX_CLIENT_REQUESTS):
            if self.stop.is_set():
                return
            self.attempts.append(self.create(number))
            time.sleep(0.1)

    def create(self, number: int) -> Attempt:
        try:
            response = self.stack.ask_gateway(f"create VPN ticket {number}")
        except httpx.TimeoutException as error:
            return Attempt("timeout", detail=type(error).__name__)
        except httpx.TransportError as error:
            return Attempt("transport error", detail=type(error).__name__)
        if response.status_code >= 400:
            return Attempt("http error", detail=str(response.status_code))
        try:
            body = response.json()
        except ValueError:
            return Attempt("unclear", detail=response.text[:300])
        if "error" in body:
            return Attempt("json-rpc error", detail=str(body["error"])[:300])
        records = find_records(body)
        if records and records[0].get("id"):
            return Attempt("created", ticket_id=int(records[0]["id"]))
        if '"failed"' in response.text or "TASK_STATE_FAILED" in response.text:
            return Attempt("failed task", detail=response.text[:300])
        return Attempt("unclear", detail=response.text[:300])

    def created_since(self, index: int) -> bool:
        return any(attempt.ticket_id for attempt in self.attempts[index:])


def test_kill_9_each_service_keeps_tickets(stack: Stack) -> None:
    before = {name: stack.service(name) for name in STACK_SERVICES}
    client = TicketClient(stack)
    client.start()
    try:
        for name in STACK_SERVICES:
            entry = stack.wait_healthy(name)
            victim = psutil.Process(entry["pid"])
            assert abs(victim.create_time() - entry["create_time"]) < 0.05
            victim.kill()
            stack.wait_healthy(name, not_pid=entry["pid"])
            # The stack serves tickets end to end again before the next kill.
            mark = len(client.attempts)
            deadline = time.monotonic() + RECOVERY_TIMEOUT
            while not client.created_since(mark) and time.monotonic() < deadline:
                time.sleep(0.25)
            assert client.created_since(mark), (name, client.attempts[mark:][-5:])
    finally:
        client.stop.set()
        client.join(timeout=CLIENT_TIMEOUT + 5)

    assert not client.is_alive()
    created = {a.ticket_id for a in client.attempts if a.ticket_id is not None}
    outcomes = {attempt.outcome for attempt in client.attempts}
    unclear = [a for a in client.attempts if a.outcome in ("timeout", "unclear")]
    assert created - stack.ticket_ids() == set()
    assert unclear == []
    assert "created" in outcomes
    status = stack.cli("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    rows = {row["name"]: row for row in json.loads(status.stdout)}
    for name in STACK_SERVICES:
        assert rows[name]["restarts"] >= before[name]["restarts"] + 1, rows[name]
        assert rows[name]["pid"] != before[name]["pid"]


# A stopped process keeps its port open but responds to nothing.


def test_sigstopped_agent_restarted(stack: Stack) -> None:
    entry = stack.wait_healthy("oxygen")
    stopped = psutil.Process(entry["pid"])
    stopped.send_signal(signal.SIGSTOP)
    try:
        unhealthy = None
        for _attempt in range(30):
            status = stack.cli("status", "--json", timeout=15)
            rows = {row["name"]: row for row in json.loads(status.stdout)}
            if status.returncode == 1 and rows["oxygen"]["healthy"] is False:
                unhealthy = rows["oxygen"]
                break
            time.sleep(0.5)
        assert unhealthy is not None
        assert unhealthy["health_ok"] is False
        restarted = stack.wait_healthy("oxygen", not_pid=entry["pid"])
    finally:
        if stopped.is_running():
            stopped.send_signal(signal.SIGCONT)
            stopped.kill()

    assert restarted["restarts"] == entry["restarts"] + 1
    assert not alive(entry["pid"])


# Logs and state files changed under a running supervisor.


def test_deleted_log_file_reopened(stack: Stack) -> None:
    log_file = stack.run_dir / "logs" / "tickets.log"
    stack.wait_healthy("tickets")
    log_file.unlink()

    deadline = time.monotonic() + 30
    while not log_file.exists() and time.monotonic() < deadline:
        reply = stack.ask_gateway("create VPN ticket after the log was removed")
        assert reply.status_code == 200, reply.text
        time.sleep(0.5)
    assert log_file.exists()
    assert log_file.read_text().strip() != ""


def test_corrupted_state_file_rewritten(stack: Stack) -> None:
    path = stack.run_dir / "state.json"
    path.write_text('{"version": 1, "services": ')

    status = stack.cli("status", "--json")
    up = stack.cli("up", timeout=UP_TIMEOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            json.loads(path.read_text())
            break
        except ValueError:
            time.sleep(0.25)

    assert status.returncode == 0, status.stdout + status.stderr
    assert up.returncode == 0, up.stdout + up.stderr
    assert json.loads(path.read_text())["supervisor"]["pid"] > 0


# The supervisor killed with -9: services stay, the next `up` adopts them.


def test_supervisor_kill_9_services_adopted(stack: Stack) -> None:
    for name in STACK_SERVICES:
        stack.wait_healthy(name)
    state = stack.state()
    supervisor = state["supervisor"]
    pids = {name: state["services"][name]["pid"] for name in STACK_SERVICES}
    services_before = set(project_processes(stack.directory)) - {supervisor["pid"]}
    psutil.Process(supervisor["pid"]).kill()
    psutil.Process(supervisor["pid"]).wait(timeout=10)

    orphaned = stack.cli("status", "--json")
    orphaned_rows = {row["name"]: row for row in json.loads(orphaned.stdout)}
    # Without a supervisor, `status` probes every port itself: a hung agent
    # must cost it one probe timeout, not a hang.
    hung = psutil.Process(pids["finops"])
    hung.send_signal(signal.SIGSTOP)
    try:
        with_hung = stack.cli("status", "--json", timeout=15)
    finally:
        hung.send_signal(signal.SIGCONT)
    hung_rows = {row["name"]: row for row in json.loads(with_hung.stdout)}
    saved = (stack.run_dir / "state.json").read_bytes()
    (stack.run_dir / "state.json").write_text("{not json")
    corrupted = stack.cli("status", "--json")
    (stack.run_dir / "state.json").write_bytes(saved)
    up = stack.cli("up", timeout=UP_TIMEOUT)
    state_after = stack.state()
    services_after = set(project_processes(stack.directory)) - {
        state_after["supervisor"]["pid"]
    }
    # The new supervisor reads the adopted services' output again.
    reply = stack.ask_gateway("create VPN ticket after adoption")
    ticket_id = int(find_records(reply.json())[0]["id"])
    tickets_log = stack.run_dir / "logs" / "tickets.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if f"Created ticket {ticket_id} " in tickets_log.read_text():
            break
        time.sleep(0.25)

    dead = {name: pid for name, pid in pids.items() if not alive(pid)}
    supervisor_log = (stack.run_dir / "supervisor.log").read_text()
    assert dead == {}, supervisor_log[-3000:]
    assert orphaned.returncode == 0, orphaned.stdout + orphaned.stderr
    assert {name: row["pid"] for name, row in orphaned_rows.items()} == pids
    assert {row["state"] for row in orphaned_rows.values()} == {"running"}
    assert with_hung.returncode == 1, with_hung.stdout + with_hung.stderr
    assert hung_rows["finops"]["healthy"] is False
    assert hung_rows["tickets"]["healthy"] is True
    assert corrupted.returncode == 0, corrupted.stdout + corrupted.stderr
    assert "state" in corrupted.stderr
    assert len(corrupted.stderr.strip().splitlines()) == 1
    assert "Traceback" not in corrupted.stderr
    assert up.returncode == 0, up.stdout + up.stderr
    assert state_after["supervisor"]["pid"] != supervisor["pid"]
    assert {n: state_after["services"][n]["pid"] for n in STACK_SERVICES} == pids
    assert services_after == services_before
    assert f"Created ticket {ticket_id} " in tickets_log.read_text()


# A full run directory, for real: the run directory is a small tmpfs.


def fill_up(directory: Path) -> Path:
    """Write a file into `directory` until the file system reports ENOSPC."""
    filler = directory / "filler.bin"
    block = b"\0" * (1024 * 1024)
    with open(filler, "wb", buffering=0) as handle:
        for size in (len(block), 4096, 1):
            for _attempt in range(1 << 16):
                try:
                    handle.write(block[:size])
                except OSError as error:
                    assert error.errno == 28, error
                    break
    return filler


def test_full_run_dir_recovers(stack: Stack) -> None:
    if not stack.on_tmpfs:
        pytest.skip("mounting a tmpfs needs root; a full disk cannot be made here")
    stack.wait_healthy("tickets")
    filler = fill_up(stack.run_dir)
    try:
        full_status = stack.cli("status", "--json")
        full_replies = [
            stack.ask_gateway(f"create VPN ticket on a full disk {n}") for n in range(3)
        ]
    finally:
        filler.unlink()
    written_before = stack.state()["updated_at"]

    recovered = stack.ask_gateway("create VPN ticket after space came back")
    deadline = time.monotonic() + 30
    while stack.state()["updated_at"] == written_before and time.monotonic() < deadline:
        time.sleep(0.25)
    status = stack.cli("status", "--json")

    assert full_status.returncode == 0, full_status.stdout + full_status.stderr
    for reply in full_replies:
        assert reply.status_code == 200, reply.text
        body = reply.json()
        created = [int(record["id"]) for record in find_records(body)]
        failed = "error" in body or '"state":"failed"' in reply.text
        assert created or failed, reply.text[:500]
        assert set(created) <= stack.ticket_ids()
    assert recovered.status_code == 200, recovered.text
    ticket_id = int(find_records(recovered.json())[0]["id"])
    assert ticket_id in stack.ticket_ids()
    assert stack.state()["updated_at"] > written_before
    assert status.returncode == 0, status.stdout + status.stderr
    tickets_log = (stack.run_dir / "logs" / "tickets.log").read_text()
    assert f"Created ticket {ticket_id} " in tickets_log
    supervisor_log = (stack.run_dir / "supervisor.log").read_text()
    assert "Traceback" not in supervisor_log
    # Each failure is logged once per episode, not once per dropped line.
    assert supervisor_log.count("Failed to write the log of tickets") <= 1
    assert supervisor_log.count("Failed to write the state file") <= 1
    assert "Resumed the log of tickets" in supervisor_log


# Users through the gateway, each with a forwarded token of their own.


def login(stack: Stack, user: str, password: str) -> str:
    response = httpx.post(
        f"{stack.url('auth')}/auth/login",
        json={"username": user, "password": password},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def as_user(token: str) -> dict[str, str]:
    return {"x-a2a-tickets-authorization": f"Bearer {token}"}


def answer_text(response: httpx.Response) -> str:
    return json.dumps(response.json())


def test_isolation_through_gateway(stack: Stack) -> None:
    password = stack.env["JARVIS_DEMO_PASSWORD"]
    vishal = as_user(login(stack, "vishal", password))
    happy = as_user(login(stack, "happy", password))
    created = stack.ask_gateway("I need a GitLab account", vishal)
    ticket = find_records(created.json())[0]

    happy_list = stack.ask_gateway("show my tickets", happy)
    happy_show = stack.ask_gateway(f"show ticket {ticket['id']}", happy)
    happy_close = stack.ask_gateway(f"close ticket {ticket['id']}", happy)
    vishal_show = stack.ask_gateway(f"show ticket {ticket['id']}", vishal)

    assert ticket["owner"] == "vishal"
    happy_owners = {record["owner"] for record in find_records(happy_list.json())}
    assert happy_owners <= {"happy"}
    assert find_records(happy_show.json()) == []
    assert find_records(happy_close.json()) == []
    assert find_records(vishal_show.json())[0]["status"] == "open"


def test_unknown_user_token_sees_nothing(stack: Stack) -> None:
    """A signed token for a user auth does not know still reaches the agent.

    The agents verify signature, issuer, audience and expiry locally and do
    not ask auth about each request, so they cannot tell that a user no
    longer exists. Such a caller acts as a user of its own with no tickets,
    and auth's /auth/verify rejects the token. Rotating JWT_SECRET_KEY
    revokes every token at once.
    """
    from services.common.tokens import issue_token

    secret = stack.dotenv()["JWT_SECRET_KEY"]
    token = issue_token(secret, "mallory", "developer", 600)
    vishal = as_user(login(stack, "vishal", stack.env["JARVIS_DEMO_PASSWORD"]))
    owned = find_records(stack.ask_gateway("show my tickets", vishal).json())

    listed = stack.ask_gateway("show my tickets", as_user(token))
    shown = stack.ask_gateway(f"show ticket {owned[0]['id']}", as_user(token))
    verified = httpx.get(
        f"{stack.url('auth')}/auth/verify",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )

    assert listed.status_code == 200, listed.text
    assert find_records(listed.json()) == []
    assert find_records(shown.json()) == []
    assert verified.status_code == 401
    assert verified.json() == {"detail": "unknown user"}


# Secrets: never in logs, state, command output or error messages.


def test_gateway_runtime_config_private(stack: Stack) -> None:
    path = stack.run_dir / "litellm.runtime.yaml"

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((stack.directory / ".env").stat().st_mode) == 0o600


def test_no_secret_in_logs_or_output(stack: Stack) -> None:
    dotenv = stack.dotenv()
    wrong_password = "wrong-" + secrets.token_hex(8)
    wrong_key = "sk-wrong-" + secrets.token_hex(16)
    secret_values = {
        "JWT_SECRET_KEY": dotenv["JWT_SECRET_KEY"],
        "LITELLM_MASTER_KEY": dotenv["LITELLM_MASTER_KEY"],
        "JWT_TOKEN": dotenv["JWT_TOKEN"],
        "JARVIS_ADMIN_PASSWORD": stack.env["JARVIS_ADMIN_PASSWORD"],
        "JARVIS_DEMO_PASSWORD": stack.env["JARVIS_DEMO_PASSWORD"],
        "wrong password": wrong_password,
        "wrong master key": wrong_key,
    }
    commands = [
        stack.cli("status"),
        stack.cli("status", "--json"),
        stack.cli("agents", "--json"),
        stack.cli("token", "show"),
        stack.cli(
            "invoke",
            "tickets",
            "show my tickets",
            "--user",
            "vishal",
            "--password-stdin",
            stdin=wrong_password + "\n",
        ),
        stack.cli(
            "token",
            "refresh",
            "--user",
            "vishal",
            "--password-stdin",
            stdin=wrong_password + "\n",
        ),
    ]
    bad_key_env = {**stack.env, "LITELLM_MASTER_KEY": wrong_key}
    bad_key = subprocess.run(
        [sys.executable, "-m", "jarvisctl", "invoke", "tickets", "show my tickets"],
        env=bad_key_env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    stack.outputs.append(bad_key.stdout + bad_key.stderr)
    files = [stack.run_dir / "supervisor.log", stack.run_dir / "state.json"]
    files += sorted((stack.run_dir / "logs").glob("*.log*"))

    assert [c.returncode for c in commands] == [0, 0, 0, 0, 1, 1]
    assert bad_key.returncode == 1
    assert "Traceback" not in bad_key.stderr
    for label, value in secret_values.items():
        assert len(value) >= 16, label
        leaks = [
            path.name for path in files if value in path.read_text("utf-8", "replace")
        ]
        assert leaks == [], label
        printed = [i for i, output in enumerate(stack.outputs) if value in output]
        assert printed == [], label


# Run directories that cannot be used, without a stack.


def bare_project(tmp_path: Path, **extra: str) -> tuple[Path, dict[str, str]]:
    """A project with `.env.template`, free ports and nothing running."""
    directory = tmp_path / "project"
    directory.mkdir()
    shutil.copy(ROOT / ".env.template", directory / ".env.template")
    env = dict(os.environ)
    for key in ("JWT_TOKEN", "JWT_SECRET_KEY", "LITELLM_MASTER_KEY", "JARVIS_RUN_DIR"):
        env.pop(key, None)
    env.update({key: str(free_port()) for key in PORT_KEYS.values()})
    env.update(JARVIS_PROJECT_DIR=str(directory), NO_COLOR="1", **extra)
    return directory, env


def run_cli(
    env: dict[str, str], *args: str, timeout: float = COMMAND_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jarvisctl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_dir_under_a_file_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file\n")
    run_dir = blocker / "run"
    directory, env = bare_project(tmp_path, JARVIS_RUN_DIR=str(run_dir))

    # `down` has nothing to stop and `status` reports every service stopped.
    expected_codes = {"up": 2, "logs": 2, "status": 1, "down": 0}
    results = {command: run_cli(env, command) for command in expected_codes}

    for command, result in results.items():
        assert result.returncode == expected_codes[command], (command, result.stderr)
        assert "Traceback" not in result.stderr, command
        assert len(result.stderr.strip().splitlines()) == 1, (command, result.stderr)
        assert str(run_dir) in result.stderr, (command, result.stderr)
    assert blocker.read_text() == "a regular file\n"
    assert project_processes(directory) == {}


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root writes into a mode 0500 directory anyway"
)
def test_read_only_run_dir_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o500)
    directory, env = bare_project(tmp_path, JARVIS_RUN_DIR=str(run_dir))

    result = run_cli(env, "up")

    assert result.returncode in (1, 2), result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(run_dir) in result.stderr
    assert project_processes(directory) == {}


def test_full_project_dir_keeps_env(tmp_path: Path) -> None:
    mount_point = tmp_path / "full"
    mount_point.mkdir()
    if os.geteuid() != 0 or not mount_tmpfs(mount_point, "256k"):
        pytest.skip("mounting a tmpfs needs root; a full disk cannot be made here")
    try:
        directory = mount_point / "project"
        directory.mkdir()
        env_file = directory / ".env"
        original = (
            b"# written by hand\nJWT_SECRET_KEY=" + secrets.token_hex(32).encode()
        )
        original += b"\n"
        env_file.write_bytes(original)
        filler = fill_up(mount_point)
        env = dict(os.environ)
        for key in ("JWT_SECRET_KEY", "LITELLM_MASTER_KEY", "JARVIS_RUN_DIR"):
            env.pop(key, None)
        env.update(JARVIS_PROJECT_DIR=str(directory), NO_COLOR="1")

        result = run_cli(env, "init")
        after = env_file.read_bytes()
        leftovers = sorted(p.name for p in directory.iterdir())
        filler.unlink()
    finally:
        unmount(mount_point)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "space" in result.stderr
    assert after == original
    assert leftovers == [".env", ".env.lock"]


# A `.env` written by hand.


def test_env_crlf_export_quotes_kept(tmp_path: Path) -> None:
    directory, env = bare_project(tmp_path)
    ports = {key: env.pop(key) for key in PORT_KEYS.values()}
    secret = secrets.token_hex(32)
    keys = list(ports)
    lines = [
        b"# local settings, edited on Windows\r\n",
        b"export " + keys[0].encode() + b'="' + ports[keys[0]].encode() + b'"\r\n',
        keys[1].encode() + b"='" + ports[keys[1]].encode() + b"'  # quoted\r\n",
        b"\r\n",
    ]
    lines += [f"export {key}={ports[key]}\r\n".encode() for key in keys[2:]]
    lines += [
        b'export JWT_SECRET_KEY="' + secret.encode() + b'"\r\n',
        b'JARVIS_ADMIN_PASSWORD="pass word # not a comment"\r\n',
    ]
    original = b"".join(lines)
    env_file = directory / ".env"
    env_file.write_bytes(original)

    first = run_cli(env, "init")
    after_first = env_file.read_bytes()
    second = run_cli(env, "init")
    status = run_cli(env, "status", "--json")

    from dotenv import dotenv_values

    values = dotenv_values(env_file, interpolate=False)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "LITELLM_MASTER_KEY" in first.stdout
    assert "JWT_SECRET_KEY" not in first.stdout
    assert after_first.startswith(original)
    assert after_first.count(b"\n") == original.count(b"\n") + 1
    assert values["JWT_SECRET_KEY"] == secret
    assert values["JARVIS_ADMIN_PASSWORD"] == "pass word # not a comment"
    assert values["LITELLM_MASTER_KEY"].startswith("sk-")
    assert second.returncode == 0, second.stdout + second.stderr
    assert env_file.read_bytes() == after_first
    assert status.returncode == 1, status.stdout + status.stderr
    assert "Traceback" not in status.stderr
    rows = {row["name"]: row["port"] for row in json.loads(status.stdout)}
    assert rows == {name: int(ports[key]) for name, key in PORT_KEYS.items()}
