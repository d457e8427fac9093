"""The supervisor: starts the stack's services, watches them and restarts them.

One supervisor runs per project directory, holding `<run dir>/supervisor.lock`
for its lifetime. It runs detached (`python -m jarvisctl.supervisor
--project-dir DIR`) or in the foreground of `jarvisctl up --foreground`.
Signal handlers and control requests only record what was asked; the loop in
`Supervisor.run` does the work, so service records are changed by one thread.

Tests replace the service catalog with stand-ins: pass `services=` to
`Supervisor`, or point `JARVIS_SERVICES_FILE` (or the hidden `--services-file`
option) at a JSON list of ServiceSpec fields.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import FrameType
from typing import IO, Any

import psutil

from jarvisctl import health, process
from jarvisctl.catalog import SERVICES_FILE_ENV
from jarvisctl.config import (
    DEFAULT_STOP_TIMEOUT,
    SERVICES,
    ServiceSpec,
    Settings,
    load_settings,
    positive_setting,
)
from jarvisctl.control import ControlServer, socket_path
from jarvisctl.errors import EXIT_OK, ControlError, JarvisError, UsageError
from jarvisctl.logfiles import RotatingLogWriter, log_path
from jarvisctl.state import (
    BACKOFF,
    CRASH_LOOPING,
    EXTERNAL,
    RUNNING,
    STARTING,
    STOPPED,
    ServiceState,
    StackState,
    SupervisorInfo,
    read_state,
    write_state,
)

LOCK_NAME = "supervisor.lock"
LOG_NAME = "supervisor.log"
# Logs, state and the services' databases contain tickets and tokens, so the
# supervisor and the services it spawns create files only their owner can read.
PRIVATE_UMASK = 0o077
RUN_DIR_MODE = 0o700
LOG_FILE_MODE = 0o600
# Registration is a local call, so a registry slower than this is retried later.
REGISTER_TIMEOUT = 2.0
# Exit code of `services.common.server.serve` for a configuration error, which a
# restart cannot fix (uvicorn uses 3 for start-up failures too).
STARTUP_FAILURE = 3
# Output lines of a service kept in memory to explain a failed start.
RECENT_LINES = 20
# Seconds to wait for the output of an exited service to be copied.
OUTPUT_DRAIN_TIMEOUT = 1.0
# Start of the line `services.common.server.serve` logs for a configuration error.
STARTUP_MARKER = "Failed to start"

LineCallback = Callable[[str, str], None]

logger = logging.getLogger(__name__)


class SupervisorRunningError(ControlError):
    """Another supervisor holds the lock of this project."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        super().__init__(f"supervisor already running (pid {pid or 'unknown'})")


@dataclass
class Timing:
    """Intervals and limits of the supervisor loop, in seconds unless noted."""

    tick: float = 0.25
    probe_interval: float = 2.0
    # Probe interval while a service starts, so readiness is seen quickly.
    starting_probe_interval: float = 0.25
    probe_timeout: float = health.PROBE_TIMEOUT
    # Consecutive failed probes of a running service before it is restarted.
    failure_threshold: int = 3
    # The gateway is slow under load, so it gets more failed probes.
    gateway_failure_threshold: int = 5
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    # A service healthy this long gets its backoff reset.
    stable_after: float = 30.0
    # This many exits within crash_window, never healthy, means crash-looping.
    crash_exits: int = 5
    crash_window: float = 60.0
    state_interval: float = 2.0
    token_check_interval: float = 60.0
    # How often the gateway's config inputs are compared with the running ones.
    config_check_interval: float = 2.0
    # None takes JARVIS_STOP_TIMEOUT from the settings, else 10 s.
    stop_timeout: float | None = None


@dataclass
class _Service:
    """Runtime bookkeeping of one service. `record` is its entry in state.json."""

    spec: ServiceSpec
    record: ServiceState
    writer: RotatingLogWriter
    popen: Any = None
    failures: int = 0
    backoff: float = 0.5
    next_start: float = 0.0
    next_probe: float = 0.0
    became_healthy: bool = False
    healthy_since: float | None = None
    # Set when the next start is an automatic restart after an exit or failed
    # health checks, which `restarts` counts. Requested restarts do not count.
    restarting: bool = False
    # A start that failed for a reason a retry cannot fix waits for a command.
    blocked: bool = False
    registered: bool = False
    starting_since: float = 0.0
    crash_exits: deque[float] = field(default_factory=deque)
    recent_lines: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_LINES))
    reader: threading.Thread | None = None


@dataclass
class _Command:
    name: str
    services: list[str]
    timeout: float | None
    done: threading.Event | None = None


class Supervisor:
    """Run and watch the services of one project until shut down."""

    def __init__(
        self,
        project_dir: Path,
        services: Sequence[ServiceSpec] | None = None,
        on_line: LineCallback | None = None,
        timing: Timing | None = None,
        start: Iterable[str] = (),
    ) -> None:
        self.project_dir = project_dir.resolve()
        self.settings = load_settings(self.project_dir)
        self.specs = _dependency_order(services if services is not None else SERVICES)
        self.on_line = on_line
        self.timing = timing or Timing()
        self._initial = list(start)
        known = {spec.name for spec in self.specs}
        for name in self._initial:
            if name not in known:
                choices = ", ".join(sorted(known))
                raise UsageError(f"unknown service {name!r}: choose one of {choices}")
        self._services: dict[str, _Service] = {}
        self._commands: queue.Queue[_Command] = queue.Queue()
        self._wakeup = threading.Event()
        self._signal: int | None = None
        self._exit = False
        self._snapshot: dict[str, Any] = {}
        self._snapshot_lock = threading.Lock()
        self._last_written: dict[str, Any] | None = None
        self._last_write_at = 0.0
        self._state_write_failed = False
        self._next_token_check = 0.0
        # Fingerprint of the config the running gateway was started with, and
        # of the last changed config rejected as invalid (logged once).
        self._gateway_fingerprint: str | None = None
        self._rejected_fingerprint: str | None = None
        self._next_config_check = 0.0
        self._password_missing_logged = False
        self._lock_handle: IO[str] | None = None
        self._server: ControlServer | None = None
        self._info: SupervisorInfo | None = None
        self._previous: dict[str, ServiceState] = {}
        self._shutdown_done: list[threading.Event] = []

    # Lifecycle

    def run(self) -> int:
        """Run the loop until shutdown.

        Raises SupervisorRunningError when another supervisor holds the lock.
        Signal handlers are installed only when called from the main thread.
        The process umask is PRIVATE_UMASK while the loop runs, so children
        inherit it, and is restored on return.
        """
        previous_umask = os.umask(PRIVATE_UMASK)
        try:
            return self._run()
        finally:
            os.umask(previous_umask)

    def _run(self) -> int:
        run_dir = self.settings.run_dir
        # NOTE: a run directory that already exists keeps its mode, but the
        # files created in it are private all the same.
        run_dir.mkdir(mode=RUN_DIR_MODE, parents=True, exist_ok=True)
        self.settings.log_dir.mkdir(mode=RUN_DIR_MODE, parents=True, exist_ok=True)
        self._acquire_lock(run_dir / LOCK_NAME)
        previous_handlers = self._install_signal_handlers()
        try:
            self._set_up()
            while not self._exit:
                self._tick()
                self._wakeup.wait(self.timing.tick)
                self._wakeup.clear()
        finally:
            self._tear_down()
            _restore_signal_handlers(previous_handlers)
        return EXIT_OK

    def request_shutdown(self) -> None:
        """Ask the loop to stop every service and return. Safe from any thread."""
        self._commands.put(_Command("shutdown", [], None))
        self._wakeup.set()

    def _acquire_lock(self, path: Path) -> None:
        handle = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read().strip()
            handle.close()
            raise SupervisorRunningError(
                int(text) if text.isdigit() else None
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_handle = handle

    def _set_up(self) -> None:
        me = psutil.Process()
        path = socket_path(self.settings)
        self._info = SupervisorInfo(
            pid=me.pid,
            create_time=me.create_time(),
            started_at=time.time(),
            socket=str(path),
        )
        old = read_state(self.settings)
        self._previous = dict(old.services) if old else {}
        for spec in self.specs:
            self._services[spec.name] = self._new_service(spec)
        for svc in self._services.values():
            previous = self._previous.get(svc.spec.name)
            if previous and process.is_alive(previous.pid or 0, previous.create_time):
                self._adopt(svc, previous)
            elif previous and previous.desired == RUNNING:
                svc.record.desired = RUNNING
        for name in self._initial:
            self._apply_start(self._services[name])
        self._publish_state(force=True)
        self._server = ControlServer(path, self._handle_request)
        self._server.start()
        logger.info(
            "Started supervisor (pid %d) for %s with %d services",
            me.pid,
            self.project_dir,
            len(self.specs),
        )

    def _new_service(self, spec: ServiceSpec) -> _Service:
        try:
            port: int | None = process.service_port(self.settings, spec)
        except JarvisError:
            port = None
        previous = self._previous.get(spec.name)
        record = ServiceState(name=spec.name, port=port)
        if previous:
            # Restarts count within one run of the service; `_adopt` keeps them.
            record.last_exit = previous.last_exit
        writer = RotatingLogWriter(log_path(self.settings.log_dir, spec.name))
        return _Service(spec, record, writer, backoff=self.timing.backoff_initial)

    def _tear_down(self) -> None:
        for svc in self._services.values():
            if svc.record.state not in (RUNNING, STARTING):
                svc.record.pid = None
                svc.record.create_time = None
        if self._info is not None:
            self._publish_state(force=True)
        if self._server is not None:
            # Release every `shutdown` request, including ones still queued.
            while not self._commands.empty():
                command = self._commands.get_nowait()
                if command.done is not None:
                    self._shutdown_done.append(command.done)
            for done in self._shutdown_done:
                done.set()
            self._server.close()
        for svc in self._services.values():
            svc.writer.close()
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
        logger.info("Stopped supervisor (pid %d)", os.getpid())

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, self._record_signal)
        return previous

    def _record_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signal = signum
        self._wakeup.set()

    # The loop

    def _tick(self) -> None:
        if self._signal is not None:
            logger.info(
                "Received %s; stopping all services", signal.Signals(self._signal).name
            )
            self._signal = None
            self._shutdown(None)
            return
        self._run_commands()
        if self._exit:
            return
        for svc in self._services.values():
            self._check_exit(svc)
        self._probe_due()
        self._start_due()
        self._check_token(force=False)
        self._check_gateway_config()
        self._publish_state(force=False)

    def _check_exit(self, svc: _Service) -> None:
        record = svc.record
        if record.state not in (STARTING, RUNNING) or record.pid is None:
            return
        if svc.popen is not None:
            code = svc.popen.poll()
            if code is None:
                return
        elif process.is_alive(record.pid, record.create_time):
            return
        else:
            code = None
        self._on_exit(svc, code)

    def _on_exit(self, svc: _Service, code: int | None) -> None:
        record = svc.record
        pid, create_time = record.pid, record.create_time
        described = "an unknown code" if code is None else f"code {code}"
        logger.warning("Exited %s (pid %s) with %s", svc.spec.name, pid, described)
        svc.writer.write_line(f"[jarvisctl] {svc.spec.name} exited with {described}")
        # Workers left behind by the leader would keep the port, so stop them too.
        if pid is not None:
            process.stop_process_group(pid, create_time, timeout=1.0)
        self._mark_stopped(svc, code)
        if code == STARTUP_FAILURE and not svc.became_healthy:
            self._give_up_on_config_error(svc)
            return
        if record.desired == RUNNING:
            self._schedule_restart(svc, f"exit with {described}")

    def _give_up_on_config_error(self, svc: _Service) -> None:
        """Leave a service stopped that reported a configuration error at start."""
        name = svc.spec.name
        if svc.reader is not None:
            svc.reader.join(OUTPUT_DRAIN_TIMEOUT)
        svc.record.state = CRASH_LOOPING
        svc.record.error = _startup_error(list(svc.recent_lines)) or (
            f"exited with code {STARTUP_FAILURE} (a configuration error) before "
            f"becoming healthy; see `jarvisctl logs {name}`"
        )
        logger.error("Gave up on %s: %s", name, svc.record.error)
        svc.writer.write_line(
            f"[jarvisctl] {name} exited with a configuration error: left stopped"
        )

    def _mark_stopped(self, svc: _Service, code: int | None) -> None:
        record = svc.record
        record.state = STOPPED
        record.pid = None
        record.create_time = None
        record.last_exit = code
        record.card = None
        svc.popen = None
        svc.healthy_since = None

    def _schedule_restart(self, svc: _Service, reason: str) -> None:
        now = time.monotonic()
        name = svc.spec.name
        if not svc.became_healthy:
            svc.crash_exits.append(now)
            while (
                svc.crash_exits and now - svc.crash_exits[0] > self.timing.crash_window
            ):
                svc.crash_exits.popleft()
            if len(svc.crash_exits) >= self.timing.crash_exits:
                svc.record.state = CRASH_LOOPING
                svc.record.error = (
                    f"exited {len(svc.crash_exits)} times within "
                    f"{self.timing.crash_window:g} s without becoming healthy"
                )
                logger.error("Gave up on %s: %s", name, svc.record.error)
                svc.writer.write_line(
                    f"[jarvisctl] {name} is crash-looping: left stopped"
                )
                return
        delay = svc.backoff
        svc.backoff = min(svc.backoff * 2, self.timing.backoff_max)
        svc.next_start = now + delay
        svc.restarting = True
        svc.record.state = BACKOFF
        logger.info("Restarting %s in %g s after %s", name, delay, reason)

    def _start_due(self) -> None:
        now = time.monotonic()
        for spec in self.specs:
            svc = self._services[spec.name]
            record = svc.record
            if record.desired != RUNNING or svc.blocked:
                continue
            if record.state not in (STOPPED, BACKOFF) or now < svc.next_start:
                continue
            if self._dependencies_ready(spec):
                self._launch(svc)

    def _dependencies_ready(self, spec: ServiceSpec) -> bool:
        for dependency in spec.depends_on:
            other = self._services.get(dependency)
            if other is None:
                continue
            healthy = other.record.health is not None and other.record.health.ok
            if other.record.state not in (RUNNING, EXTERNAL) or not healthy:
                return False
        return True

    # Starting, adopting, stopping

    def _launch(self, svc: _Service) -> None:
        spec, record = svc.spec, svc.record
        try:
            self.settings = load_settings(self.project_dir)
            port = process.service_port(self.settings, spec)
        except JarvisError as error:
            self._block(svc, str(error))
            return

        record.port = port
        if process.port_in_use(self.settings.host, port):
            self._handle_taken_port(svc, port)
            return

        try:
            argv, env = process.launch_command(self.settings, spec)
        except (JarvisError, ImportError, OSError) as error:
            self._block(svc, f"failed to build the command: {error}")
            return
        if spec.name == "gateway":
            from jarvisctl.gateway import config_fingerprint

            self._gateway_fingerprint = config_fingerprint(self.settings)

        pipe_path = self.settings.log_dir / f"{spec.name}.pipe"
        read_fd, write_fd = process.open_log_pipe(pipe_path)
        try:
            popen = process.spawn(argv, env, self.project_dir, write_fd)
        except OSError as error:
            os.close(read_fd)
            self._block(svc, f"failed to run {argv[0]}: {error}")
            return
        finally:
            os.close(write_fd)

        self._start_reader(svc, read_fd)
        svc.popen = popen
        record.pid = popen.pid
        record.create_time = process.process_create_time(popen.pid)
        record.started_at = time.time()
        if svc.restarting:
            record.restarts += 1
            svc.restarting = False
        self._mark_starting(svc)
        logger.info(
            "Started %s (pid %d) on %s:%d",
            spec.name,
            popen.pid,
            self.settings.host,
            port,
        )

    def _mark_starting(self, svc: _Service) -> None:
        svc.record.state = STARTING
        svc.record.error = None
        svc.record.health = None
        svc.record.card = None
        svc.became_healthy = False
        svc.registered = False
        svc.failures = 0
        svc.next_probe = time.monotonic()
        svc.starting_since = svc.next_probe

    def _handle_taken_port(self, svc: _Service, port: int) -> None:
        spec = svc.spec
        listener = process.find_listener_pid(port)
        previous = self._previous.get(spec.name)
        if (
            listener is not None
            and previous is not None
            and previous.pid is not None
            and process.is_alive(previous.pid, previous.create_time)
            and process.is_descendant(listener, previous.pid)
        ):
            self._adopt(svc, previous)
            return
        url = f"http://{self.settings.host}:{port}{spec.health_path}"
        result = health.probe(url, self.timing.probe_timeout)
        holder = process.describe_pid(listener)
        if result.ok:
            svc.record.state = EXTERNAL
            svc.record.health = result
            svc.record.error = f"port {port} is served by {holder}, outside this stack"
            svc.next_probe = time.monotonic() + self.timing.probe_interval
            logger.info(
                "Found %s already running on port %d (%s)", spec.name, port, holder
            )
            return
        self._block(svc, f"port {port} is held by {holder}")

    def _block(self, svc: _Service, message: str) -> None:
        svc.record.state = STOPPED
        svc.record.error = message
        svc.blocked = True
        logger.error("Failed to start %s: %s", svc.spec.name, message)

    def _adopt(self, svc: _Service, previous: ServiceState) -> None:
        record = svc.record
        record.pid = previous.pid
        record.create_time = previous.create_time
        record.started_at = previous.started_at
        record.restarts = previous.restarts
        record.desired = RUNNING
        record.port = previous.port or record.port
        svc.popen = None
        if svc.spec.name == "gateway":
            from jarvisctl.gateway import config_fingerprint

            # NOTE: taken as the adopted gateway's inputs, so a config change made
            # while no supervisor ran is only picked up with the next change.
            self._gateway_fingerprint = config_fingerprint(self.settings)
        pipe_path = self.settings.log_dir / f"{svc.spec.name}.pipe"
        read_fd, write_fd = process.open_log_pipe(pipe_path)
        os.close(write_fd)
        self._start_reader(svc, read_fd)
        self._mark_starting(svc)
        logger.info(
            "Adopted %s (pid %s) from the previous supervisor",
            svc.spec.name,
            record.pid,
        )

    def _start_reader(self, svc: _Service, read_fd: int) -> None:
        svc.recent_lines.clear()
        thread = threading.Thread(
            target=self._copy_output,
            args=(svc.spec.name, read_fd, svc.writer, svc.recent_lines),
            name=f"output-{svc.spec.name}",
            daemon=True,
        )
        thread.start()
        svc.reader = thread

    def _copy_output(
        self,
        name: str,
        read_fd: int,
        writer: RotatingLogWriter,
        recent_lines: deque[str],
    ) -> None:
        # Lines dropped since the last write that failed (a full disk, say),
        # so the failure is logged once rather than once per line.
        lost = 0
        with os.fdopen(read_fd, "rb") as stream:
            for raw in stream:
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                recent_lines.append(text)
                try:
                    writer.write_line(text)
                except OSError as error:
                    if not lost:
                        logger.error(
                            "Failed to write the log of %s: %s; dropping lines "
                            "until a write succeeds",
                            name,
                            error,
                        )
                    lost += 1
                else:
                    if lost:
                        logger.warning(
                            "Resumed the log of %s after dropping %d lines", name, lost
                        )
                        lost = 0
                if self.on_line is not None:
                    self.on_line(name, text)

    def _stop(self, svc: _Service, timeout: float) -> None:
        record = svc.record
        if record.state == EXTERNAL:
            record.state = STOPPED
            record.health = None
            return
        if record.pid is None or record.state not in (STARTING, RUNNING):
            if record.state in (BACKOFF, CRASH_LOOPING):
                record.state = STOPPED
            return
        pid = record.pid
        logger.info("Stopping %s (pid %d)", svc.spec.name, pid)
        process.stop_process_group(pid, record.create_time, timeout)
        code = None
        if svc.popen is not None:
            try:
                code = svc.popen.wait(timeout=1.0)
            except Exception:  # noqa: BLE001 - the group is already gone
                code = None
        self._mark_stopped(svc, code)
        record.health = None
        logger.info("Stopped %s (pid %d)", svc.spec.name, pid)

    def _stop_timeout(self, requested: float | None) -> float:
        if requested is not None:
            return requested
        if self.timing.stop_timeout is not None:
            return self.timing.stop_timeout
        try:
            return positive_setting(
                self.settings, "JARVIS_STOP_TIMEOUT", DEFAULT_STOP_TIMEOUT, "seconds"
            )
        except JarvisError:
            return DEFAULT_STOP_TIMEOUT

    # Health

    def _probe_due(self) -> None:
        now = time.monotonic()
        due = {
            name: svc
            for name, svc in self._services.items()
            if svc.record.state in (STARTING, RUNNING, EXTERNAL)
            and svc.record.port is not None
            and now >= svc.next_probe
        }
        if not due:
            return
        host = self.settings.host
        urls = {
            name: f"http://{host}:{svc.record.port}{svc.spec.health_path}"
            for name, svc in due.items()
        }
        results = health.probe_many(urls, self.timing.probe_timeout)
        for name, result in results.items():
            self._on_probe(due[name], result)

    def _on_probe(self, svc: _Service, result: health.HealthResult) -> None:
        record = svc.record
        now = time.monotonic()
        record.health = result
        if record.state == STARTING:
            if result.ok:
                self._on_healthy(svc)
            elif now - svc.starting_since > svc.spec.start_timeout:
                self._give_up_starting(svc)
                return
            svc.next_probe = now + (
                self.timing.probe_interval
                if result.ok
                else self.timing.starting_probe_interval
            )
            return
        svc.next_probe = now + self.timing.probe_interval
        if record.state == EXTERNAL:
            if not result.ok:
                logger.warning(
                    "Lost %s outside this stack: %s", svc.spec.name, result.error
                )
                record.state = STOPPED
                record.error = None
            return
        if result.ok:
            svc.failures = 0
            if (
                svc.healthy_since
                and now - svc.healthy_since >= self.timing.stable_after
            ):
                svc.backoff = self.timing.backoff_initial
                svc.crash_exits.clear()
            if svc.spec.is_agent and not svc.registered:
                self._register(svc)
            return
        svc.failures += 1
        threshold = self.timing.failure_threshold
        if svc.spec.name == "gateway":
            threshold = self.timing.gateway_failure_threshold
        logger.warning(
            "Failed health check %d/%d of %s (pid %s): %s",
            svc.failures,
            threshold,
            svc.spec.name,
            record.pid,
            result.error,
        )
        if svc.failures >= threshold:
            self._stop(svc, self._stop_timeout(None))
            svc.writer.write_line(
                f"[jarvisctl] {svc.spec.name} failed {threshold} health checks"
            )
            self._schedule_restart(svc, f"{threshold} failed health checks")

    def _give_up_starting(self, svc: _Service) -> None:
        timeout = svc.spec.start_timeout
        logger.error(
            "Timed out after %g s waiting for %s (pid %s) to become healthy",
            timeout,
            svc.spec.name,
            svc.record.pid,
        )
        svc.writer.write_line(
            f"[jarvisctl] {svc.spec.name} was not healthy within {timeout:g} s"
        )
        self._stop(svc, self._stop_timeout(None))
        self._schedule_restart(svc, f"no healthy probe within {timeout:g} s")

    def _on_healthy(self, svc: _Service) -> None:
        record = svc.record
        record.state = RUNNING
        svc.became_healthy = True
        svc.healthy_since = time.monotonic()
        svc.failures = 0
        logger.info("Marked %s (pid %s) healthy", svc.spec.name, record.pid)
        if svc.spec.is_agent:
            base_url = f"http://{self.settings.host}:{record.port}"
            record.card = health.fetch_card(base_url, self.timing.probe_timeout)
            self._register(svc)
        if svc.spec.name == "auth":
            self._check_token(force=True)

    def _register(self, svc: _Service) -> None:
        registry = self._services.get("registry")
        if registry is None or registry.record.state not in (RUNNING, EXTERNAL):
            return
        card_url = f"http://{self.settings.host}:{svc.record.port}{health.CARD_PATH}"
        url = f"http://{self.settings.host}:{registry.record.port}/agents"
        try:
            status, _body = health.request(
                "POST", url, REGISTER_TIMEOUT, body={"card_url": card_url}
            )
        except health.HTTPRequestError as error:
            logger.warning(
                "Failed to register %s with the registry: %s", svc.spec.name, error
            )
            return
        if status >= 300:
            logger.warning(
                "Failed to register %s with the registry: HTTP %d",
                svc.spec.name,
                status,
            )
            return
        svc.registered = True
        logger.info("Registered %s with the registry", svc.spec.name)

    def _check_token(self, force: bool) -> None:
        if "auth" not in self._services or "gateway" not in self._services:
            return
        now = time.monotonic()
        if not force and now < self._next_token_check:
            return
        self._next_token_check = now + self.timing.token_check_interval
        auth = self._services["auth"].record
        if auth.state not in (RUNNING, EXTERNAL):
            return
        settings = load_settings(self.project_dir)
        if not settings.env.get("JARVIS_ADMIN_PASSWORD"):
            if not self._password_missing_logged:
                logger.warning(
                    "Skipped the gateway token refresh: JARVIS_ADMIN_PASSWORD is "
                    "not set; run `jarvisctl token refresh` yourself"
                )
                self._password_missing_logged = True
            return
        from jarvisctl import tokens

        try:
            if not tokens.token_needs_refresh(settings):
                return
            tokens.refresh_token(settings)
        except Exception as error:  # noqa: BLE001 - a refresh failure must not stop us
            logger.warning("Failed to refresh the gateway token: %s", error)
            return
        logger.info("Refreshed JWT_TOKEN in %s", settings.env_file)
        gateway = self._services["gateway"]
        if gateway.record.state in (STARTING, RUNNING):
            self._stop(gateway, self._stop_timeout(None))
            gateway.next_start = 0.0
            logger.info("Restarting gateway to use the new token")

    def _check_gateway_config(self) -> None:
        """Restart the gateway alone when its config file or token changed."""
        gateway = self._services.get("gateway")
        now = time.monotonic()
        if gateway is None or now < self._next_config_check:
            return
        self._next_config_check = now + self.timing.config_check_interval
        if (
            gateway.record.state not in (STARTING, RUNNING)
            or gateway.record.pid is None
        ):
            return
        from jarvisctl.gateway import config_fingerprint, load_gateway_config

        settings = load_settings(self.project_dir)
        fingerprint = config_fingerprint(settings)
        if fingerprint in (self._gateway_fingerprint, self._rejected_fingerprint):
            return
        try:
            load_gateway_config(settings.gateway_config_file)
        except JarvisError as error:
            self._rejected_fingerprint = fingerprint
            logger.error(
                "Kept the running gateway; the changed config is invalid: %s", error
            )
            return
        logger.info("Restarting gateway because its config or token changed")
        self._stop(gateway, self._stop_timeout(None))
        gateway.next_start = 0.0

    # Commands

    def _handle_request(self, message: dict[str, Any]) -> dict[str, Any]:
        command = message.get("cmd")
        if command == "ping":
            return {"ok": True, "pid": os.getpid()}
        if command == "state":
            with self._snapshot_lock:
                return {"ok": True, "state": self._snapshot}
        if command not in ("start", "stop", "restart", "shutdown"):
            return {"ok": False, "error": f"unknown command {command!r}"}
        names = message.get("services") or []
        if not isinstance(names, list):
            return {"ok": False, "error": f"invalid services {names!r}: give a list"}
        unknown = [name for name in names if name not in self._services]
        if unknown:
            known = ", ".join(self._services)
            return {
                "ok": False,
                "error": f"unknown service {unknown}: choose from {known}",
            }
        timeout = message.get("timeout")
        if timeout is not None and not isinstance(timeout, (int, float)):
            return {"ok": False, "error": f"invalid timeout {timeout!r}: give seconds"}
        restarts_gateway = not names or "gateway" in names
        if command == "restart" and restarts_gateway and "gateway" in self._services:
            # Checked before the gateway is stopped, so a bad config or master
            # key leaves the running gateway in place.
            error = gateway_launch_error(self.project_dir)
            if error is not None:
                logger.error("Rejected the restart of gateway: %s", error)
                return {"ok": False, "error": f"gateway not restarted: {error}"}
        done = threading.Event() if command == "shutdown" else None
        self._commands.put(_Command(command, list(names), timeout, done))
        self._wakeup.set()
        if done is not None:
            done.wait()
        return {"ok": True}

    def _run_commands(self) -> None:
        while not self._exit:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            if command.name == "shutdown":
                if command.done is not None:
                    self._shutdown_done.append(command.done)
                self._shutdown(command.timeout)
                return
            selected = [
                self._services[spec.name]
                for spec in self.specs
                if spec.name in command.services or not command.services
            ]
            if command.name == "start":
                for svc in selected:
                    self._apply_start(svc)
            elif command.name == "stop":
                for svc in reversed(selected):
                    svc.record.desired = STOPPED
                    self._stop(svc, self._stop_timeout(command.timeout))
            elif command.name == "restart":
                self._apply_restart(selected, command.timeout)

    def _apply_start(self, svc: _Service) -> None:
        if svc.record.desired == STOPPED:
            svc.record.restarts = 0
        svc.record.desired = RUNNING
        svc.blocked = False
        if svc.record.state in (BACKOFF, CRASH_LOOPING):
            svc.record.state = STOPPED
        if svc.record.state == STOPPED:
            svc.record.error = None
            svc.next_start = 0.0
            svc.backoff = self.timing.backoff_initial
            svc.crash_exits.clear()

    def _apply_restart(self, selected: list[_Service], timeout: float | None) -> None:
        for svc in reversed(selected):
            if svc.record.state in (STARTING, RUNNING):
                self._stop(svc, self._stop_timeout(timeout))
            svc.restarting = False
        for svc in selected:
            self._apply_start(svc)

    def _shutdown(self, timeout: float | None) -> None:
        """Stop every service, dependents first; one level's services at once."""
        stop_timeout = self._stop_timeout(timeout)
        for level in reversed(_dependency_levels(self.specs)):
            selected = [self._services[spec.name] for spec in level]
            for svc in selected:
                svc.record.desired = STOPPED
            threads = [
                threading.Thread(target=self._stop, args=(svc, stop_timeout))
                for svc in selected[1:]
            ]
            for thread in threads:
                thread.start()
            self._stop(selected[0], stop_timeout)
            for thread in threads:
                thread.join()
        self._exit = True
        logger.info("Stopped all services")

    # State

    def _build_state(self) -> StackState:
        return StackState(
            updated_at=time.time(),
            supervisor=self._info,
            services={name: svc.record for name, svc in self._services.items()},
        )

    def _publish_state(self, force: bool) -> None:
        state = self._build_state()
        data = state.to_dict()
        comparable = {key: value for key, value in data.items() if key != "updated_at"}
        now = time.monotonic()
        changed = comparable != self._last_written
        with self._snapshot_lock:
            self._snapshot = data
        if not (
            force or changed or now - self._last_write_at >= self.timing.state_interval
        ):
            return
        try:
            write_state(self.settings, state)
        except OSError as error:
            # Retried every tick, so only the first failure in a row is logged.
            if not self._state_write_failed:
                logger.error("Failed to write the state file: %s", error)
            self._state_write_failed = True
            return
        if self._state_write_failed:
            logger.info("Resumed writing the state file")
            self._state_write_failed = False
        self._last_written = comparable
        self._last_write_at = now


def _dependency_levels(specs: Sequence[ServiceSpec]) -> list[list[ServiceSpec]]:
    """Group specs by depth: level 0 needs nothing, level n needs level n-1."""
    by_name = {spec.name: spec for spec in specs}
    depth: dict[str, int] = {}

    def level_of(spec: ServiceSpec) -> int:
        if spec.name not in depth:
            known = [by_name[dep] for dep in spec.depends_on if dep in by_name]
            depth[spec.name] = 1 + max(map(level_of, known), default=-1)
        return depth[spec.name]

    levels: list[list[ServiceSpec]] = []
    for spec in _dependency_order(specs):
        index = level_of(spec)
        while len(levels) <= index:
            levels.append([])
        levels[index].append(spec)
    return levels


def _dependency_order(specs: Sequence[ServiceSpec]) -> list[ServiceSpec]:
    """Sort specs so each comes after the ones it depends on (given order otherwise)."""
    by_name = {spec.name: spec for spec in specs}
    ordered: list[ServiceSpec] = []
    visiting: set[str] = set()

    def visit(spec: ServiceSpec) -> None:
        if spec in ordered:
            return
        if spec.name in visiting:
            raise JarvisError(
                f"services depend on each other in a cycle at {spec.name!r}"
            )
        visiting.add(spec.name)
        for dependency in spec.depends_on:
            if dependency in by_name:
                visit(by_name[dependency])
        visiting.discard(spec.name)
        ordered.append(spec)

    for spec in specs:
        visit(spec)
    return ordered


def gateway_launch_error(project_dir: Path) -> str | None:
    """Check what `gateway.gateway_launch` needs; return why it would fail, or None.

    Unlike `gateway_launch` it writes no runtime config, so the running gateway
    is not affected.
    """
    from jarvisctl.gateway import (
        gateway_master_key,
        load_gateway_config,
        placeholder_values,
        resolve_placeholders,
    )

    try:
        settings = load_settings(project_dir)
        config = load_gateway_config(settings.gateway_config_file)
        resolve_placeholders(config.data, placeholder_values(settings))
        gateway_master_key(settings)
    except JarvisError as error:
        return str(error)
    return None


def _startup_error(lines: list[str]) -> str | None:
    """Pick the line that explains a failed start from a service's last output.

    That is the last line with "Failed to start", from those words on so the
    timestamp and logger name are dropped, or else the last non-empty line.
    """
    non_empty = [line.strip() for line in lines if line.strip()]
    for line in reversed(non_empty):
        position = line.find(STARTUP_MARKER)
        if position >= 0:
            return line[position:]
    return non_empty[-1] if non_empty else None


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def load_services_file(path: Path) -> list[ServiceSpec]:
    """Read a JSON list of ServiceSpec fields, as written by tests."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise JarvisError(f"cannot read services file {path}: {error}") from None
    names = {item.name for item in fields(ServiceSpec)}
    specs = []
    for item in items:
        values = {key: value for key, value in item.items() if key in names}
        for key in ("depends_on", "command"):
            if key in values:
                values[key] = tuple(values[key])
        specs.append(ServiceSpec(**values))
    return specs


def write_services_file(path: Path, specs: Iterable[ServiceSpec]) -> None:
    """Write specs in the format `load_services_file` reads."""
    items = [
        {item.name: getattr(spec, item.name) for item in fields(ServiceSpec)}
        for spec in specs
    ]
    path.write_text(json.dumps(items, indent=1), encoding="utf-8")


def start_detached(settings: Settings, services_file: Path | None = None) -> int:
    """Start `python -m jarvisctl.supervisor` in its own session; return its pid.

    Its output goes to `<run dir>/supervisor.log`. The caller should then poll
    `control.supervisor_alive` until it returns True.
    """
    settings.run_dir.mkdir(mode=RUN_DIR_MODE, parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "jarvisctl.supervisor",
        "--project-dir",
        str(settings.project_dir),
    ]
    env = dict(os.environ)
    if services_file is not None:
        env[SERVICES_FILE_ENV] = str(services_file)
    log_fd = os.open(
        settings.run_dir / LOG_NAME,
        os.O_WRONLY | os.O_CREAT | os.O_APPEND,
        LOG_FILE_MODE,
    )
    try:
        child = process.spawn(argv, env, settings.project_dir, log_fd)
    finally:
        os.close(log_fd)
    return child.pid


def _print_line(service: str, line: str) -> None:
    print(f"{service} | {line}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jarvisctl.supervisor",
        description="Run the jarvisctl supervisor of one project directory.",
    )
    parser.add_argument(
        "--project-dir", required=True, type=Path, help="Project directory."
    )
    parser.add_argument(
        "--foreground", action="store_true", help="Print service output to stdout."
    )
    parser.add_argument(
        "--start",
        action="append",
        default=[],
        metavar="SERVICE",
        help="Service to start at once; repeat for more.",
    )
    parser.add_argument("--services-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    level = os.environ.get("JARVIS_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else "INFO",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    services_file = args.services_file or os.environ.get(SERVICES_FILE_ENV)
    try:
        specs = load_services_file(Path(services_file)) if services_file else None
        supervisor = Supervisor(
            args.project_dir,
            services=specs,
            on_line=_print_line if args.foreground else None,
            start=args.start,
        )
        return supervisor.run()
    except SupervisorRunningError as error:
        print(error, file=sys.stderr)
        return EXIT_OK
    except JarvisError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    # Run main() of the importable module, so loggers and classes carry the
    # name jarvisctl.supervisor rather than __main__.
    from jarvisctl.supervisor import main as module_main

    sys.exit(module_main())
