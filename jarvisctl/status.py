"""Rows of `jarvisctl status`: each service's process, health and agent card.

With a running supervisor the rows come from its state as is. Without one,
recorded pids are checked with psutil and every port is probed, so a stack
started by hand, or left behind by a killed supervisor, still shows up.

CPU % is the average since each process started, as `ps` shows it, so that
`status` needs no sampling interval.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from jarvisctl.catalog import health_url, service_ports
from jarvisctl.config import Settings

def all_healthy(statuses: list[ServiceStatus]) -> bool:
    """Return True when every row is a healthy running or external service."""
    return all(status.state in HEALTHY_STATES and status.healthy for status in statuses)



# Service states that count as up, when the health check agrees.
HEALTHY_STATES = ("running", "external")


@dataclass
class ServiceStatus:
    """One row of `status`: a service's process, health and agent card."""

    name: str
    port: int
    state: str
    pid: int | None = None
    desired: str | None = None
    started_at: float | None = None
    uptime: float | None = None
    restarts: int = 0
    last_exit: int | None = None
    health_ok: bool | None = None
    health_status: int | None = None
    latency_ms: float | None = None
    health_error: str | None = None
    card_name: str | None = None
    card_version: str | None = None
    card_skills: int | None = None
    # Sum over the process tree of CPU time / age, in %, as `ps` shows %CPU.
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    # "pid N (name)" of the process listening on the port, ours or not.
    listener: str | None = None
    # True when the listener is a process of this stack.
    owned: bool = False
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.state in HEALTHY_STATES and self.health_ok is not False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["healthy"] = self.healthy
        return data


def read_state_file(settings: Settings) -> dict[str, Any] | None:
    """Return state.json as a dict; None when it is missing or corrupted."""
    from jarvisctl.state import read_state

    state = read_state(settings)
    return state.to_dict() if state is not None else None


def process_alive(pid: int, create_time: float | None) -> bool:
    """Return True when `pid` runs and is the process started at `create_time`."""
    from jarvisctl.process import is_alive

    return is_alive(pid, create_time)


def build_statuses(
    settings: Settings, state: dict[str, Any] | None, live: bool
) -> list[ServiceStatus]:
    """Turn a state dict into rows, one per service of the catalog.

    `live` means the state came from a running supervisor and is trusted as
    is: a running service's recorded process is taken as its port's listener,
    and only the other ports are looked up in the socket table. Otherwise
    recorded pids are checked with psutil and every port that has a listener
    is probed, so a stack started by hand shows as external.
    """
    from jarvisctl.ports import find_listeners

    services = (state or {}).get("services") or {}
    ports = service_ports(settings)
    now = time.time()
    statuses = []
    for name in ports:
        status = _status_from_entry(name, ports[name], services.get(name) or {}, now)
        if live and status.state == "running":
            status.listener = _recorded_listener(status.pid, status.port)
            status.owned = status.listener is not None
        statuses.append(status)

    # The scan reads every process's sockets, so it is skipped when no row
    # needs it.
    unknown = [ports[status.name] for status in statuses if status.listener is None]
    listeners = find_listeners(unknown) if unknown else {}
    owners = owned_processes(state)
    for status in statuses:
        listener = listeners.get(ports[status.name])
        if listener is not None:
            status.listener = listener.label
            status.owned = is_owned(listener.pid, owners)
        if not live:
            _check_recorded_process(status, services.get(status.name) or {})
    if not live:
        _probe_listeners(settings, statuses)
    return statuses


def _status_from_entry(
    name: str, port: int, entry: dict[str, Any], now: float
) -> ServiceStatus:
    status = ServiceStatus(
        name=name,
        port=int(entry.get("port") or port),
        state=str(entry.get("state") or "stopped"),
        pid=entry.get("pid"),
        desired=entry.get("desired"),
        started_at=entry.get("started_at"),
        restarts=int(entry.get("restarts") or 0),
        last_exit=entry.get("last_exit"),
        error=entry.get("error"),
    )
    if status.started_at and status.state in ("running", "starting", "external"):
        status.uptime = max(0.0, now - status.started_at)
    health = entry.get("health") or {}
    if health:
        status.health_ok = bool(health.get("ok"))
        status.health_status = health.get("status")
        status.latency_ms = health.get("latency_ms")
        status.health_error = health.get("error")
    card = entry.get("card") or {}
    if card:
        status.card_name = card.get("name")
        status.card_version = card.get("version")
        status.card_skills = card.get("skills")
    return status


def _recorded_listener(pid: int | None, port: int) -> str | None:
    """Return the listener label of the recorded process, None if it is gone."""
    import psutil

    from jarvisctl.ports import Listener

    if pid is None:
        return None
    try:
        name = psutil.Process(pid).name()
    except psutil.Error:
        return None
    return Listener(port, "", pid, name).label


def owned_processes(state: dict[str, Any] | None) -> dict[int, float | None]:
    owners: dict[int, float | None] = {}
    supervisor = (state or {}).get("supervisor") or {}
    if isinstance(supervisor.get("pid"), int):
        owners[supervisor["pid"]] = supervisor.get("create_time")
    for entry in ((state or {}).get("services") or {}).values():
        if isinstance(entry.get("pid"), int) and entry.get("state") != "external":
            owners[entry["pid"]] = entry.get("create_time")
    return owners


def is_owned(pid: int | None, owners: dict[int, float | None]) -> bool:
    """Return True when `pid` or one of its ancestors is a recorded process."""
    if pid is None:
        return False
    import psutil

    try:
        chain = [psutil.Process(pid), *psutil.Process(pid).parents()]
    except psutil.Error:
        return False
    for process in chain:
        if process.pid in owners and process_alive(process.pid, owners[process.pid]):
            return True
    return False


def _check_recorded_process(status: ServiceStatus, entry: dict[str, Any]) -> None:
    if status.state == "external":
        return
    pid = entry.get("pid")
    if isinstance(pid, int) and process_alive(pid, entry.get("create_time")):
        return
    status.pid = None
    status.uptime = None
    status.state = "stopped"
    status.health_ok = None
    status.health_status = None
    status.latency_ms = None
    status.health_error = None


def _probe_listeners(settings: Settings, statuses: list[ServiceStatus]) -> None:
    from jarvisctl.health import probe_many

    urls = {
        status.name: health_url(settings, status.name, status.port)
        for status in statuses
        if status.listener is not None
    }
    results = probe_many(urls)
    for status in statuses:
        result = results.get(status.name)
        if result is None:
            continue
        status.health_ok = result.ok
        status.health_status = result.status
        status.latency_ms = result.latency_ms
        status.health_error = result.error
        if not status.owned and status.state == "stopped" and result.ok:
            status.state = "external"


def measure_resources(statuses: list[ServiceStatus]) -> None:
    """Fill CPU % and RSS of each row's process tree.

    CPU % is user plus system time over the time since the process started,
    summed over the tree, as `ps` computes %CPU. A process that exits midway
    counts as zero.
    """
    import psutil

    for status in statuses:
        if status.pid is None:
            continue
        try:
            root = psutil.Process(status.pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        cpu = 0.0
        rss = 0
        now = time.time()
        for process in processes:
            try:
                with process.oneshot():
                    cpu += _average_cpu_percent(process, now)
                    rss += process.memory_info().rss
            except psutil.Error:
                continue
        status.cpu_percent = round(cpu, 1)
        status.rss_bytes = rss


def _average_cpu_percent(process: Any, now: float) -> float:
    times = process.cpu_times()
    age = now - process.create_time()
    if age <= 0:
        return 0.0
    return 100.0 * (times.user + times.system) / age
