"""Orchestration behind the stack commands: init, up, down, restart, status, ports.

The supervisor owns the service processes. This module starts the supervisor,
sends it requests over its control socket and polls its state until services
are healthy. Without a supervisor (for example after it was killed) `status`
and `down` work from `state.json` and psutil directly.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jarvisctl.catalog import service_names, service_ports, spec_of
from jarvisctl.config import (
    DEFAULT_STOP_TIMEOUT,
    Settings,
    load_settings,
    positive_setting,
    read_stop_timeout,
)
from jarvisctl.envfile import ENV_FILE_MODE, read_env, update_env
from jarvisctl.errors import ControlError, ServiceError, UsageError
from jarvisctl.ports import Listener
from jarvisctl.status import (
    ServiceStatus,
    build_statuses,
    is_owned,
    measure_resources,
    owned_processes,
    process_alive,
    read_state_file,
)
from services.common.settings import MIN_SECRET_BYTES

# The two secrets `init` generates when `.env` has no value for them.
SECRET_GENERATORS: dict[str, Callable[[], str]] = {
    "JWT_SECRET_KEY": lambda: secrets.token_hex(32),
    "LITELLM_MASTER_KEY": lambda: "sk-" + secrets.token_urlsafe(32),
}
# Template shipped with the code, used when the project has no `.env.template`.
PACKAGED_TEMPLATE = Path(__file__).resolve().parent.parent / ".env.template"
# Seconds to wait for a freshly spawned supervisor to respond on its socket.
SUPERVISOR_START_TIMEOUT = 15.0
# Seconds to wait for the supervisor to stop every service and exit on `down`.
SHUTDOWN_GRACE = 15.0
# Interval between two state polls while waiting for services.
POLL_INTERVAL = 0.25
# Interval between two checks whether a stopping process has exited; a
# liveness check is a cheap psutil call, so `down` returns soon after the exit.
EXIT_POLL_INTERVAL = 0.05
# A crash-looping state seen this soon after `start` may predate the request.
STALE_STATE_GRACE = 2.0
# Lines of a failed service's log shown by `up`.
LOG_TAIL_LINES = 20

logger = logging.getLogger(__name__)

StatusCallback = Callable[[list[ServiceStatus]], None]


@dataclass
class Failure:
    """A service that did not become healthy, with the end of its log."""

    name: str
    reason: str
    log_tail: list[str] = field(default_factory=list)


@dataclass
class StackResult:
    """Outcome of `up` or `restart`: the final rows and what failed."""

    statuses: list[ServiceStatus]
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class DownResult:
    """Outcome of `down`: what was stopped and what is still there."""

    stopped: list[str]
    leftovers: list[str] = field(default_factory=list)


def validate_settings(settings: Settings, stopping: bool = False) -> None:
    """Raise UsageError naming the first invalid value of `.env` and its fix.

    With `stopping`, an invalid JARVIS_STOP_TIMEOUT is left to `read_stop_timeout`,
    so that a bad value never prevents stopping the stack.
    """
    if not stopping:
        positive_setting(
            settings, "JARVIS_STOP_TIMEOUT", DEFAULT_STOP_TIMEOUT, "seconds"
        )
    positive_setting(settings, "JWT_EXPIRATION_HOURS", 24.0, "hours")
    secret = settings.env.get("JWT_SECRET_KEY") or ""
    if secret and len(secret.encode()) < MIN_SECRET_BYTES:
        raise UsageError(
            f"invalid JWT_SECRET_KEY: {len(secret.encode())} bytes, at least "
            f"{MIN_SECRET_BYTES} needed; remove it from .env and run `jarvisctl init`"
        )
    data = (settings.env.get("FINOPS_DATA") or "").strip()
    if data:
        path = Path(data).expanduser()
        path = path if path.is_absolute() else settings.project_dir / path
        if not path.is_file():
            raise UsageError(
                f"invalid FINOPS_DATA: {path} is not a file; point it at a FOCUS "
                "CSV or Parquet file, or leave it empty for the demo data"
            )
    _check_distinct_ports(settings)


def _check_distinct_ports(settings: Settings) -> None:
    owners: dict[int, str] = {}
    for name, port in service_ports(settings).items():
        key = spec_of(name).port_key
        if port in owners:
            raise UsageError(
                f"{owners[port]} and {key} are both {port}; "
                "give each service its own port"
            )
        owners[port] = key


def init_project(settings: Settings) -> list[str]:
    """Create `.env` if missing and fill empty secrets; return the generated keys.

    Values the user set are never changed, and `.env` always ends up mode 0600.
    """
    env_file = settings.env_file
    if not env_file.exists():
        template = settings.template_file
        if not template.is_file() and PACKAGED_TEMPLATE.is_file():
            template = PACKAGED_TEMPLATE
        if not template.is_file():
            # Without the template `.env` would lack every key but the secrets.
            raise UsageError(
                f"missing .env.template at {settings.template_file}; "
                "restore it (git checkout .env.template)"
            )
        _copy_private(template, env_file)
        logger.info("Created %s", env_file)
    current = read_env(env_file)
    missing = [key for key in SECRET_GENERATORS if not current.get(key)]
    if missing:
        update_env(env_file, {key: SECRET_GENERATORS[key]() for key in missing})
        logger.info("Generated %s in %s", ", ".join(missing), env_file)
    os.chmod(env_file, ENV_FILE_MODE)
    return missing


def _copy_private(source: Path, target: Path) -> None:
    # Create the file with mode 0600 first so a secret never sits world-readable.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, ENV_FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        with open(source, "rb") as template:
            shutil.copyfileobj(template, handle)


def check_run_dir(settings: Settings, create: bool = False) -> None:
    """Raise UsageError when the run directory cannot be used (or created).

    Without `create`, a run directory that does not exist yet is fine.
    """
    path = settings.run_dir
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The run directory, or the nearest parent that exists, must be one.
        existing = next(item for item in (path, *path.parents) if item.exists())
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
    except OSError as error:
        raise UsageError(
            f"cannot use run directory {path}: {error.strerror}; "
            "set JARVIS_RUN_DIR to a writable directory"
        ) from None


def resolve_services(names: list[str] | tuple[str, ...]) -> list[str]:
    """Return the named services plus their dependencies, in start order.

    No names means the whole stack. Raises UsageError for an unknown name.
    """
    if not names:
        return list(service_names())
    requested: set[str] = set()
    pending = list(names)
    while pending:
        spec = spec_of(pending.pop())
        if spec.name not in requested:
            requested.add(spec.name)
            pending.extend(spec.depends_on)
    return [name for name in service_names() if name in requested]


def validate_services(names: list[str] | tuple[str, ...]) -> list[str]:
    """Return the named services in catalog order, or all of them for no names."""
    if not names:
        return list(service_names())
    chosen = {spec_of(name).name for name in names}
    return [name for name in service_names() if name in chosen]


@contextlib.contextmanager
def _run_lock(settings: Settings, name: str) -> Iterator[None]:
    settings.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(settings.run_dir / name, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ping_supervisor(settings: Settings, timeout: float = 2.0) -> int | None:
    """Return the pid of the supervisor responding on the socket, or None."""
    from jarvisctl import control

    try:
        reply = control.request(settings, {"cmd": "ping"}, timeout=timeout)
    except ControlError:
        return None
    if not reply.get("ok"):
        return None
    return int(reply.get("pid") or 0) or None


def ensure_supervisor(
    settings: Settings, timeout: float = SUPERVISOR_START_TIMEOUT
) -> int:
    """Return the running supervisor's pid, starting a detached one if needed.

    `up.lock` serialises the check and the start, so two concurrent `up` runs
    start one supervisor.
    """
    with _run_lock(settings, "up.lock"):
        pid = ping_supervisor(settings)
        if pid is not None:
            return pid
        process = _spawn_supervisor(settings)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = ping_supervisor(settings, timeout=1.0)
            if pid is not None:
                logger.info("Started supervisor (pid %d)", pid)
                return pid
            # Exit code 0 means another supervisor holds the lock and is still
            # opening its socket, so keep asking.
            if process.poll() not in (None, 0):
                break
            time.sleep(POLL_INTERVAL)
    tail = "\n".join(tail_file(settings.run_dir / "supervisor.log", 10))
    raise ServiceError(
        f"supervisor did not start within {timeout:.0f} s; "
        f"see {settings.run_dir / 'supervisor.log'}" + (f":\n{tail}" if tail else "")
    )


def _spawn_supervisor(settings: Settings) -> subprocess.Popen[bytes]:
    log_path = settings.run_dir / "supervisor.log"
    env = dict(os.environ)
    env["JARVIS_PROJECT_DIR"] = str(settings.project_dir)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jarvisctl.supervisor",
                "--project-dir",
                str(settings.project_dir),
            ],
            cwd=settings.project_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def supervisor_state(settings: Settings) -> dict[str, Any] | None:
    """Return the live state from the supervisor, or None when none responds."""
    from jarvisctl import control

    try:
        reply = control.request(settings, {"cmd": "state"}, timeout=2.0)
    except ControlError:
        return None
    state = reply.get("state") if reply.get("ok") else None
    return state if isinstance(state, dict) else None


def _send(settings: Settings, payload: dict[str, Any], timeout: float = 5.0) -> None:
    from jarvisctl import control

    reply = control.request(settings, payload, timeout=timeout)
    if not reply.get("ok"):
        error = reply.get("error") or "no reason given"
        raise ServiceError(f"supervisor rejected {payload['cmd']!r}: {error}")


def collect_status(settings: Settings, resources: bool = True) -> list[ServiceStatus]:
    """Return one row per service, from the supervisor or else from disk and probes."""
    state = supervisor_state(settings)
    live = state is not None
    if state is None:
        state = read_state_file(settings)
    statuses = build_statuses(settings, state, live=live)
    if resources:
        measure_resources(statuses)
    return statuses


def foreign_conflicts(settings: Settings, names: list[str]) -> list[str]:
    """Return one message per requested port held by a process not of this stack.

    A foreign listener that passes the health check counts as a running
    service started by hand, so it is no conflict.
    """
    statuses = build_statuses(settings, read_state_file(settings), live=False)
    messages = []
    for status in statuses:
        if status.name not in names or status.listener is None:
            continue
        if status.state == "external" or status.owned:
            continue
        messages.append(
            f"port {status.port} of {status.name} is held by {status.listener}; "
            "stop it or run `jarvisctl ports --free --force`"
        )
    return messages


def up(
    settings: Settings,
    names: list[str] | tuple[str, ...] = (),
    timeout: float | None = None,
    on_update: StatusCallback | None = None,
) -> StackResult:
    """Start the named services (all by default) and their dependencies.

    Waits until each is healthy, fails, or runs past its `start_timeout`
    (or `timeout` seconds for the whole wait, when given).
    """
    requested = resolve_services(names)
    init_project(settings)
    settings = load_settings(settings.project_dir)
    check_run_dir(settings, create=True)
    check_gateway_config(settings, requested)
    live = supervisor_state(settings)
    if live is None:
        conflicts = foreign_conflicts(settings, requested)
        if conflicts:
            raise ServiceError("; ".join(conflicts))
    ensure_supervisor(settings)
    requested_at = time.time()
    _send(settings, {"cmd": "start", "services": requested})
    return wait_for_healthy(settings, requested, requested_at, timeout, on_update)


def check_gateway_config(settings: Settings, names: list[str]) -> None:
    """Raise GatewayConfigError when the gateway is among `names` and cannot start.

    Checked here, before the supervisor is asked, so that a broken
    litellm_config.yaml never stops a gateway that is running fine.
    """
    if "gateway" not in names or spec_of("gateway").command:
        # A gateway with its own command (a test stand-in) has no config file.
        return
    from jarvisctl.gateway import gateway_master_key, load_gateway_config

    load_gateway_config(settings.gateway_config_file)
    gateway_master_key(settings)


def restart(
    settings: Settings,
    names: list[str] | tuple[str, ...] = (),
    timeout: float | None = None,
    on_update: StatusCallback | None = None,
) -> StackResult:
    """Restart the named services (all by default) and wait until they are healthy.

    Starts the stack first when no supervisor is running.
    """
    requested = validate_services(names)
    if ping_supervisor(settings) is None:
        return up(settings, requested, timeout, on_update)
    check_gateway_config(settings, requested)
    requested_at = time.time()
    _send(settings, {"cmd": "restart", "services": requested})
    return wait_for_healthy(
        settings, requested, requested_at, timeout, on_update, restarted=True
    )


def wait_for_healthy(
    settings: Settings,
    names: list[str],
    requested_at: float,
    timeout: float | None = None,
    on_update: StatusCallback | None = None,
    restarted: bool = False,
) -> StackResult:
    """Poll the supervisor until every named service is healthy or has failed."""
    limit = timeout if timeout is not None else _default_wait(names)
    deadline = time.monotonic() + limit
    began: dict[str, float] = {}
    failures: dict[str, Failure] = {}
    statuses: list[ServiceStatus] = []
    while True:
        state = supervisor_state(settings)
        if state is None:
            tail = tail_file(settings.run_dir / "supervisor.log", LOG_TAIL_LINES)
            reason = "the supervisor stopped responding; see supervisor.log"
            return StackResult(statuses, [Failure("supervisor", reason, tail)])
        statuses = build_statuses(settings, state, live=True)
        if on_update is not None:
            on_update(statuses)
        pending = []
        for status in statuses:
            if status.name not in names or status.name in failures:
                continue
            if _is_ready(status, requested_at, restarted):
                continue
            failed = [dep for dep in spec_of(status.name).depends_on if dep in failures]
            if failed and status.state == "stopped":
                reason = f"not started because {', '.join(failed)} failed"
                failures[status.name] = Failure(status.name, reason)
                continue
            failure = _check_failure(status, requested_at, began)
            if failure is not None:
                failure.log_tail = tail_log(settings, status.name)
                failures[status.name] = failure
            else:
                pending.append(status.name)
        if not pending:
            break
        if time.monotonic() > deadline:
            for name in pending:
                reason = f"not healthy within {limit:.0f} s"
                failures[name] = Failure(name, reason, tail_log(settings, name))
            break
        time.sleep(POLL_INTERVAL)
    ordered = [failures[name] for name in service_names() if name in failures]
    return StackResult(statuses, ordered)


def _default_wait(names: list[str]) -> float:
    # Services start in dependency order, so the longest chain of start
    # timeouts bounds the whole wait.
    memo: dict[str, float] = {}

    def chain(name: str) -> float:
        if name not in memo:
            spec = spec_of(name)
            before = max((chain(dep) for dep in spec.depends_on), default=0.0)
            memo[name] = before + spec.start_timeout
        return memo[name]

    return max((chain(name) for name in names), default=0.0) + 5.0


def _is_ready(status: ServiceStatus, requested_at: float, restarted: bool) -> bool:
    if not status.healthy:
        return False
    if restarted and status.state != "external":
        # The supervisor sets started_at when it spawns the new process.
        return status.started_at is not None and status.started_at >= requested_at - 1
    return True


def _check_failure(
    status: ServiceStatus, requested_at: float, began: dict[str, float]
) -> Failure | None:
    now = time.time()
    fresh = now - requested_at < STALE_STATE_GRACE
    if status.state == "crash-looping" and not fresh:
        reason = status.error or "it exited 5 times within 60 s"
        return Failure(status.name, f"crash-looping: {reason}")
    if status.state == "stopped" and not fresh:
        if status.error:
            return Failure(status.name, status.error)
        if status.listener and not status.owned:
            reason = f"port {status.port} is held by {status.listener}"
            return Failure(status.name, reason)
    if status.state in ("starting", "backoff"):
        began.setdefault(status.name, now)
        limit = spec_of(status.name).start_timeout
        if now - began[status.name] > limit:
            return Failure(status.name, f"not healthy within {limit:.0f} s")
    return None


def down(
    settings: Settings,
    names: list[str] | tuple[str, ...] = (),
    timeout: float | None = None,
) -> DownResult:
    """Stop the named services (all, and the supervisor, by default).

    Without a supervisor the processes recorded in `state.json` are stopped
    directly, each only if its pid still has the recorded start time.
    """
    requested = validate_services(names)
    stop_timeout = timeout or read_stop_timeout(settings, logger.warning)
    live = supervisor_state(settings)
    state = live if live is not None else read_state_file(settings)
    recorded = _recorded_processes(state, requested)
    if live is not None:
        _stop_via_supervisor(settings, live, requested, names, stop_timeout)
    else:
        _stop_directly(recorded, stop_timeout)
    leftovers = _find_leftovers(settings, recorded, requested)
    stopped = [name for name in requested if name in recorded]
    return DownResult(stopped=stopped, leftovers=leftovers)


def _recorded_processes(
    state: dict[str, Any] | None, names: list[str]
) -> dict[str, tuple[int, float | None]]:
    services = (state or {}).get("services") or {}
    recorded = {}
    for name in names:
        entry = services.get(name) or {}
        pid = entry.get("pid")
        if isinstance(pid, int) and entry.get("state") != "external":
            recorded[name] = (pid, entry.get("create_time"))
    return recorded


def _stop_via_supervisor(
    settings: Settings,
    live: dict[str, Any],
    requested: list[str],
    names: list[str] | tuple[str, ...],
    stop_timeout: float,
) -> None:
    if names:
        _send(settings, {"cmd": "stop", "services": requested, "timeout": stop_timeout})
        _wait_until_stopped(settings, requested, stop_timeout + SHUTDOWN_GRACE)
        return
    supervisor = live.get("supervisor") or {}
    reply_timeout = stop_timeout * 2 + SHUTDOWN_GRACE
    _send(settings, {"cmd": "shutdown", "timeout": stop_timeout}, timeout=reply_timeout)
    pid = supervisor.get("pid")
    if isinstance(pid, int):
        _wait_for_exit(pid, supervisor.get("create_time"), SHUTDOWN_GRACE)


def _wait_until_stopped(settings: Settings, names: list[str], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        state = supervisor_state(settings)
        if state is None:
            return
        services = state.get("services") or {}
        busy = [
            name
            for name in names
            if (services.get(name) or {}).get("state") not in ("stopped", None)
            and (services.get(name) or {}).get("pid") is not None
        ]
        if not busy:
            return
        time.sleep(POLL_INTERVAL)


def _wait_for_exit(pid: int, create_time: float | None, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process_alive(pid, create_time):
        time.sleep(EXIT_POLL_INTERVAL)


def _stop_directly(
    recorded: dict[str, tuple[int, float | None]], stop_timeout: float
) -> None:
    from jarvisctl.process import stop_process_group

    for name in reversed(service_names()):
        if name not in recorded:
            continue
        pid, create_time = recorded[name]
        if not process_alive(pid, create_time):
            continue
        logger.info("Stopping %s (pid %d) without a supervisor", name, pid)
        stop_process_group(pid, create_time, stop_timeout)


def _find_leftovers(
    settings: Settings,
    recorded: dict[str, tuple[int, float | None]],
    names: list[str],
) -> list[str]:
    from jarvisctl.ports import find_listeners

    leftovers = []
    for name, (pid, create_time) in recorded.items():
        if process_alive(pid, create_time):
            leftovers.append(f"{name} (pid {pid}) is still running")
    all_ports = service_ports(settings)
    ports = {all_ports[name]: name for name in names}
    for port, listener in find_listeners(ports).items():
        leftovers.append(f"port {port} of {ports[port]} is held by {listener.label}")
    return leftovers


def tail_log(settings: Settings, name: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    """Return the last lines of a service's log, with their timestamps."""
    from jarvisctl.logfiles import tail_lines

    return [
        f"{line.timestamp} {line.text}".strip()
        for line in tail_lines(settings.log_dir, name, lines)
    ]


def tail_file(path: Path, lines: int) -> list[str]:
    """Return the last `lines` lines of a text file; a missing file has none."""
    # Reading the end only keeps this fast on a log of several megabytes.
    chunk = 64 * 1024
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - chunk))
            data = handle.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace")
    return text.splitlines()[-lines:]


@dataclass
class PortRow:
    """One row of `ports`: a service port and the process listening on it."""

    service: str
    port: int
    listener: Listener | None
    # "ours" for a process of this stack, "foreign" for any other, None if free.
    owner: str | None

    def to_dict(self) -> dict[str, Any]:
        listener = self.listener
        return {
            "service": self.service,
            "port": self.port,
            "pid": listener.pid if listener else None,
            "process": listener.name if listener else None,
            "owner": self.owner,
        }


def port_rows(settings: Settings) -> list[PortRow]:
    """Return each service's port with its listener and whether it is ours."""
    from jarvisctl.ports import find_listeners

    state = supervisor_state(settings) or read_state_file(settings)
    owners = owned_processes(state)
    ports = service_ports(settings)
    listeners = find_listeners(ports.values())
    rows = []
    for name in ports:
        listener = listeners.get(ports[name])
        owner = None
        if listener is not None:
            owner = "ours" if is_owned(listener.pid, owners) else "foreign"
        rows.append(PortRow(name, ports[name], listener, owner))
    return rows


def free_ports(
    settings: Settings,
    force: bool,
    confirm: Callable[[PortRow], bool],
    timeout: float | None = None,
) -> tuple[list[str], list[str]]:
    """Stop listeners on the service ports; return (done, not done) messages.

    Our own leftovers (no supervisor running) are stopped with their children.
    Every listener is confirmed by psutil (same pid and start time) right
    before it is signalled. A foreign process is stopped only with `force`
    and after `confirm(row)` returns True.
    """
    from jarvisctl.ports import free_port

    stop_timeout = timeout or read_stop_timeout(settings, logger.warning)
    supervised = ping_supervisor(settings) is not None
    done: list[str] = []
    skipped: list[str] = []
    for row in port_rows(settings):
        listener = row.listener
        if listener is None:
            continue
        where = f"port {row.port} ({row.service}) held by {listener.label}"
        if row.owner == "ours" and supervised:
            skipped.append(f"{where} is supervised; run `jarvisctl down` instead")
            continue
        if row.owner == "foreign" and not force:
            skipped.append(f"{where} is not ours; rerun with --force to stop it")
            continue
        if row.owner == "foreign" and not confirm(row):
            skipped.append(f"{where} was left running")
            continue
        try:
            free_port(listener, stop_timeout)
        except ServiceError as error:
            skipped.append(str(error))
            continue
        done.append(f"Stopped {listener.label} on port {row.port} ({row.service})")
    return done, skipped
