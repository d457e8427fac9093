"""Project settings: where things live, which ports, and the service catalog.

Values come from the project's `.env` with the environment taking precedence,
the same rule the services follow, so the CLI and the services agree on ports.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jarvisctl.envfile import read_env
from jarvisctl.errors import UsageError

DEFAULT_HOST = "127.0.0.1"
RUN_DIR_NAME = ".jarvis"
# Seconds between SIGTERM and SIGKILL when JARVIS_STOP_TIMEOUT is not set.
DEFAULT_STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the stack and how to start and probe it."""

    name: str
    port_key: str
    default_port: int
    module: str
    health_path: str
    depends_on: tuple[str, ...] = ()
    card_name: str | None = None
    # Seconds `up` waits for the readiness check before giving up.
    start_timeout: float = 30.0
    # Explicit argv, for services that are not `python -m <module>` (tests).
    command: tuple[str, ...] = ()

    @property
    def is_agent(self) -> bool:
        return self.card_name is not None


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("auth", "AUTH_SERVICE_PORT", 9998, "services.auth", "/health"),
    ServiceSpec(
        "registry",
        "REGISTRY_SERVICE_PORT",
        8003,
        "services.registry",
        "/health",
        depends_on=("auth",),
    ),
    ServiceSpec(
        "tickets",
        "TICKETS_AGENT_PORT",
        8080,
        "services.tickets",
        "/health",
        depends_on=("registry",),
        card_name="TicketsAgent",
    ),
    ServiceSpec(
        "finops",
        "FINOPS_AGENT_PORT",
        8081,
        "services.finops",
        "/health",
        depends_on=("registry",),
        card_name="FinOpsAgent",
    ),
    ServiceSpec(
        "oxygen",
        "OXYGEN_AGENT_PORT",
        8082,
        "services.oxygen",
        "/health",
        depends_on=("registry",),
        card_name="OxygenAgent",
    ),
    # The proxy's cold start measured about 8 s with litellm 1.108 on 2 cores;
    # the timeout leaves room for a loaded machine. It needs the gateway JWT,
    # minted once auth is up, but not the agents: it reads their cards per
    # call, so it starts beside them and `up` takes about its cold start.
    ServiceSpec(
        "gateway",
        "LITELLM_GATEWAY_PORT",
        8090,
        "litellm.proxy.proxy_cli",
        "/health/readiness",
        depends_on=("auth",),
        start_timeout=90.0,
    ),
)
SERVICE_NAMES = tuple(spec.name for spec in SERVICES)


def service_spec(name: str) -> ServiceSpec:
    for spec in SERVICES:
        if spec.name == name:
            return spec
    known = ", ".join(SERVICE_NAMES)
    raise UsageError(f"unknown service {name!r}: choose one of {known}")


def read_port(env: dict[str, str], spec: ServiceSpec) -> int:
    """Return the port of `spec` from `env`, checked to be 1-65535."""
    raw = env.get(spec.port_key) or str(spec.default_port)
    try:
        port = int(raw)
    except ValueError:
        raise UsageError(
            f"invalid {spec.port_key} in .env: {raw!r} is not a port number"
        ) from None
    if not 0 < port < 65536:
        raise UsageError(f"invalid {spec.port_key} in .env: {port} is not 1-65535")
    return port


@dataclass(frozen=True)
class Settings:
    """Settings of one project directory."""

    project_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def env_file(self) -> Path:
        return self.project_dir / ".env"

    @property
    def template_file(self) -> Path:
        return self.project_dir / ".env.template"

    @property
    def run_dir(self) -> Path:
        raw = self.env.get("JARVIS_RUN_DIR") or RUN_DIR_NAME
        path = Path(raw)
        return path if path.is_absolute() else self.project_dir / path

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def gateway_config_file(self) -> Path:
        raw = self.env.get("LITELLM_CONFIG") or "litellm_config.yaml"
        path = Path(raw)
        return path if path.is_absolute() else self.project_dir / path

    @property
    def host(self) -> str:
        return self.env.get("JARVIS_BIND_HOST") or DEFAULT_HOST

    @property
    def python(self) -> str:
        return sys.executable

    def port(self, name: str) -> int:
        return read_port(self.env, service_spec(name))

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.port(name)}"


def positive_setting(settings: Settings, key: str, default: float, unit: str) -> float:
    """Return the setting `key` as a positive number; raise UsageError otherwise."""
    raw = settings.env.get(key) or ""
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(
            f"invalid {key}: {raw!r} is not a positive number of {unit}; "
            f"set it in .env, for example {key}={default:g}"
        )
    return value


def read_stop_timeout(settings: Settings, on_warning: Callable[[str], None]) -> float:
    """Return JARVIS_STOP_TIMEOUT, or the default with a warning when it is invalid."""
    try:
        return positive_setting(
            settings, "JARVIS_STOP_TIMEOUT", DEFAULT_STOP_TIMEOUT, "seconds"
        )
    except UsageError as error:
        on_warning(f"{error}; using {DEFAULT_STOP_TIMEOUT:g} s")
        return DEFAULT_STOP_TIMEOUT


def find_project_dir(start: Path | None = None) -> Path:
    """Return JARVIS_PROJECT_DIR, or the nearest directory up with `.env.template`."""
    explicit = os.environ.get("JARVIS_PROJECT_DIR")
    if explicit:
        return Path(explicit).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".env.template").is_file() or (candidate / ".env").is_file():
            return candidate
    return here


def load_settings(project_dir: Path | None = None) -> Settings:
    """Read `.env` of the project and overlay the environment."""
    directory = project_dir or find_project_dir()
    env = dict(read_env(directory / ".env"))
    env.update(os.environ)
    return Settings(project_dir=directory, env=env)
