"""Settings shared by every service, read from the project's `.env`.

The environment takes precedence over `.env`, so a test or the supervisor can
override any key for one process without touching the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORTS = {
    "auth": ("AUTH_SERVICE_PORT", 9998),
    "registry": ("REGISTRY_SERVICE_PORT", 8003),
    "tickets": ("TICKETS_AGENT_PORT", 8080),
    "finops": ("FINOPS_AGENT_PORT", 8081),
    "oxygen": ("OXYGEN_AGENT_PORT", 8082),
    "gateway": ("LITELLM_GATEWAY_PORT", 8090),
}
# HS256 keys shorter than the hash output weaken the signature (RFC 7518, 3.2).
MIN_SECRET_BYTES = 32
JWT_ISSUER = "jarvis-auth"
JWT_AUDIENCE = "jarvis-agents"


class ConfigError(Exception):
    """A setting is missing or invalid."""


def project_dir() -> Path:
    """Return the project directory: JARVIS_PROJECT_DIR or the working directory."""
    return Path(os.environ.get("JARVIS_PROJECT_DIR") or os.getcwd()).resolve()


def load_env(directory: Path | None = None) -> dict[str, str]:
    """Merge `.env` from the project directory with the environment (which wins)."""
    env_file = (directory or project_dir()) / ".env"
    values: dict[str, str] = {}
    if env_file.is_file():
        values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    values.update(os.environ)
    return values


@dataclass(frozen=True)
class ServiceSettings:
    """Settings one service process needs."""

    env: dict[str, str]
    host: str
    run_dir: Path

    def port(self, service: str) -> int:
        key, default = DEFAULT_PORTS[service]
        raw = self.env.get(key) or str(default)
        try:
            port = int(raw)
        except ValueError:
            raise ConfigError(f"invalid {key}: {raw!r} is not a port number") from None
        if not 0 < port < 65536:
            raise ConfigError(f"invalid {key}: {port} is outside 1-65535")
        return port

    def url(self, service: str) -> str:
        return f"http://{self.host}:{self.port(service)}"

    def jwt_secret(self) -> str:
        secret = self.env.get("JWT_SECRET_KEY", "")
        if not secret:
            raise ConfigError(
                "missing JWT_SECRET_KEY: run `jarvisctl init` to generate one in .env"
            )
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"invalid JWT_SECRET_KEY: {len(secret.encode())} bytes, at least "
                f"{MIN_SECRET_BYTES} needed; run `jarvisctl init` after removing it"
            )
        return secret


def load_settings() -> ServiceSettings:
    """Read the settings of the current project."""
    directory = project_dir()
    env = load_env(directory)
    host = env.get("JARVIS_BIND_HOST") or DEFAULT_HOST
    run_dir = Path(env.get("JARVIS_RUN_DIR") or directory / ".jarvis")
    if not run_dir.is_absolute():
        run_dir = directory / run_dir
    return ServiceSettings(env=env, host=host, run_dir=run_dir)
