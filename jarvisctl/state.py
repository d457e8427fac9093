"""The stack's state file, `<run dir>/state.json`, and its records.

Only the supervisor writes the file. It writes a temporary file in the same
directory, flushes it to disk and renames it over the old one, so readers see
either the previous or the next state and never a partial one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jarvisctl.config import Settings
from jarvisctl.files import write_private_file
from jarvisctl.health import CardSummary, HealthResult

STATE_VERSION = 1
STATE_FILE_NAME = "state.json"
# The file names pids and ports but no secrets; 0600 still keeps it private.
STATE_FILE_MODE = 0o600

# Values of ServiceState.state.
STARTING = "starting"
RUNNING = "running"
STOPPED = "stopped"
BACKOFF = "backoff"
CRASH_LOOPING = "crash-looping"
EXTERNAL = "external"

logger = logging.getLogger(__name__)


@dataclass
class SupervisorInfo:
    """The supervisor process that owns the state file."""

    pid: int
    create_time: float
    started_at: float
    socket: str


@dataclass
class ServiceState:
    """Record of one service as the supervisor tracks it."""

    name: str
    port: int | None
    pid: int | None = None
    create_time: float | None = None
    state: str = STOPPED
    desired: str = STOPPED
    started_at: float | None = None
    restarts: int = 0
    last_exit: int | None = None
    health: HealthResult | None = None
    card: CardSummary | None = None
    # Why the service is not running, for example a port held by another process.
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "port": self.port,
            "pid": self.pid,
            "create_time": self.create_time,
            "state": self.state,
            "desired": self.desired,
            "started_at": self.started_at,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "health": self.health.to_dict() if self.health else None,
            "card": self.card.to_dict() if self.card else None,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceState:
        health = data.get("health")
        card = data.get("card")
        return cls(
            name=str(data["name"]),
            port=data.get("port"),
            pid=data.get("pid"),
            create_time=data.get("create_time"),
            state=str(data.get("state") or STOPPED),
            desired=str(data.get("desired") or STOPPED),
            started_at=data.get("started_at"),
            restarts=int(data.get("restarts") or 0),
            last_exit=data.get("last_exit"),
            health=HealthResult.from_dict(health) if health else None,
            card=CardSummary.from_dict(card) if card else None,
            error=data.get("error"),
        )


@dataclass
class StackState:
    """Contents of state.json."""

    updated_at: float
    supervisor: SupervisorInfo | None
    services: dict[str, ServiceState] = field(default_factory=dict)
    version: int = STATE_VERSION

    def to_dict(self) -> dict[str, Any]:
        supervisor = self.supervisor
        return {
            "version": self.version,
            "updated_at": self.updated_at,
            "supervisor": vars(supervisor).copy() if supervisor else None,
            "services": {name: svc.to_dict() for name, svc in self.services.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackState:
        raw_supervisor = data.get("supervisor")
        supervisor = None
        if raw_supervisor:
            supervisor = SupervisorInfo(
                pid=int(raw_supervisor["pid"]),
                create_time=float(raw_supervisor["create_time"]),
                started_at=float(raw_supervisor["started_at"]),
                socket=str(raw_supervisor["socket"]),
            )
        services = {
            name: ServiceState.from_dict(raw)
            for name, raw in (data.get("services") or {}).items()
        }
        return cls(
            updated_at=float(data["updated_at"]),
            supervisor=supervisor,
            services=services,
            version=int(data.get("version") or STATE_VERSION),
        )


def state_path(settings: Settings) -> Path:
    return settings.run_dir / STATE_FILE_NAME


def read_state(settings: Settings) -> StackState | None:
    """Load state.json; None when it is missing, unreadable or corrupted."""
    path = state_path(settings)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        logger.warning("Ignored state file %s: %s", path, error.strerror)
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("top level is not an object")
        return StackState.from_dict(data)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        logger.warning(
            "Ignored corrupted state file %s (%s); the supervisor rewrites it",
            path,
            error,
        )
        return None


def write_state(settings: Settings, state: StackState) -> None:
    """Replace state.json atomically with `state`."""
    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(state.to_dict(), indent=1, sort_keys=True)
    write_private_file(path, payload, STATE_FILE_MODE)
