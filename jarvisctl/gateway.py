"""The LiteLLM gateway's configuration: validate, translate, render and launch.

`litellm_config.yaml` is checked against the subset of LiteLLM's schema this
stack uses, so a typo fails with its file and line instead of LiteLLM silently
skipping an agent. The older flat agent format (`base_url`, `auth_token`,
`rate_limit`) is translated. The proxy loads a rendered copy in the run
directory, with ports resolved and the gateway's JWT added to every agent.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jarvisctl.config import SERVICES, Settings
from jarvisctl.errors import GatewayConfigError
from jarvisctl.files import write_private_file
from jarvisctl.gateway_schema import (
    AGENT_FIELDS,
    LEGACY_AGENT_FIELDS,
    LEGACY_AUTH_TYPES,
    LEGACY_ONLY_KEYS,
    TOP_FIELDS,
    LineDict,
    check_mapping,
    load_yaml_with_lines,
    plain,
)
from jarvisctl.tokens import current_token
from services.common.headers import GATEWAY_TOKEN_HEADER

RUNTIME_FILE_NAME = "litellm.runtime.yaml"
# The runtime file contains the gateway's JWT.
RUNTIME_FILE_MODE = 0o600
PROXY_MODULE = "litellm.proxy.proxy_cli"
# More workers would each hold a copy of the agent registry and ~300 MB.
PROXY_WORKERS = 1

# Master keys published in LiteLLM's documentation; litellm 1.108 refuses them.
KNOWN_DEFAULT_MASTER_KEYS = frozenset({"sk-1234"})
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]"})
# Each of these makes litellm 1.108 read a bundled copy instead of fetching
# the file from GitHub at start-up.
OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
    # Keep the proxy's own refusal of a weak master key switched on.
    "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "false",
}
LEGACY_DEFAULT_VERSION = "1.0.0"
LEGACY_PROTOCOL_VERSION = "0.3.0"

logger = logging.getLogger(__name__)

# Paths whose format warning was already logged by this process.
_warned_paths: set[str] = set()


@dataclass
class GatewayConfig:
    """A validated gateway configuration with agents in LiteLLM's schema."""

    path: Path
    data: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def agents(self) -> list[dict[str, Any]]:
        return list(self.data.get("agents") or [])

    @property
    def agent_names(self) -> list[str]:
        return [agent["agent_name"] for agent in self.agents]


def load_gateway_config(path: Path) -> GatewayConfig:
    """Read and validate `path`; raise GatewayConfigError naming file and line."""
    label = _label(path)
    document = load_yaml_with_lines(path, label)
    check_mapping(document, TOP_FIELDS, label, "the top level")
    if "agents" in document and "agent_list" in document:
        raise GatewayConfigError(
            f"{label}:{document.key_lines['agent_list']}: both 'agents' and "
            "'agent_list' are set; keep only 'agents'"
        )
    raw_agents = document.get("agents", document.get("agent_list")) or []
    agents, legacy_names = _check_agents(raw_agents, label)

    data = {key: plain(value) for key, value in document.items()}
    data.pop("agent_list", None)
    data["agents"] = agents
    warnings = []
    if legacy_names:
        warnings.append(
            f"{label}: agents {', '.join(legacy_names)} use the older flat format "
            "(base_url, auth_token, rate_limit); translated them to "
            "agent_card_params, static_headers and rpm_limit. Rewrite them like "
            "the agents in the shipped litellm_config.yaml"
        )
    return GatewayConfig(path=path, data=data, warnings=warnings)


def _check_agents(
    raw_agents: Any, label: str
) -> tuple[list[dict[str, Any]], list[str]]:
    agents: list[dict[str, Any]] = []
    legacy_names: list[str] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw_agents):
        where = f"agents[{index}]"
        line = raw_agents.item_lines[index]
        if not isinstance(entry, LineDict):
            raise GatewayConfigError(
                f"{label}:{line}: invalid {where}: expected a mapping of agent keys"
            )
        if "agent_card_params" not in entry and LEGACY_ONLY_KEYS & entry.keys():
            check_mapping(entry, LEGACY_AGENT_FIELDS, label, where)
            _check_legacy_agent(entry, label, where)
            agent = translate_legacy_agent(plain(entry))
            legacy_names.append(agent["agent_name"])
        else:
            check_mapping(entry, AGENT_FIELDS, label, where)
            agent = plain(entry)
        name = agent["agent_name"]
        if name in seen:
            raise GatewayConfigError(
                f"{label}:{entry.line}: duplicate agent_name {name!r} in {where}; "
                f"agents[{seen[name]}] already uses it"
            )
        seen[name] = index
        agents.append(agent)
    return agents, legacy_names


def _check_legacy_agent(entry: LineDict, label: str, where: str) -> None:
    if not (entry.get("agent_id") or entry.get("agent_name")):
        raise GatewayConfigError(
            f"{label}:{entry.line}: missing key 'agent_id' or 'agent_name' in {where}"
        )
    auth_type = str(entry.get("auth_type") or "bearer").lower()
    if auth_type not in LEGACY_AUTH_TYPES:
        line = entry.key_lines.get("auth_type", entry.line)
        raise GatewayConfigError(
            f"{label}:{line}: invalid {where}.auth_type {auth_type!r}; expected "
            f"one of {', '.join(LEGACY_AUTH_TYPES)}"
        )


def translate_legacy_agent(entry: dict[str, Any]) -> dict[str, Any]:
    """Turn one agent of the older flat format into LiteLLM's agent schema."""
    short_name = entry.get("agent_id") or entry["agent_name"]
    known = {spec.name: spec.card_name for spec in SERVICES if spec.is_agent}
    card_name = entry.get("agent_name") or known.get(short_name) or short_name
    agent: dict[str, Any] = {
        "agent_name": short_name,
        "agent_card_params": {
            "name": card_name,
            "description": entry.get("description") or f"{card_name} agent",
            "url": entry["base_url"],
            "version": LEGACY_DEFAULT_VERSION,
            "protocolVersion": LEGACY_PROTOCOL_VERSION,
            "capabilities": {"streaming": True},
            "defaultInputModes": ["text/plain"],
            "defaultOutputModes": ["text/plain", "application/json"],
            "skills": [],
        },
    }
    token = entry.get("auth_token")
    auth_type = (entry.get("auth_type") or ("bearer" if token else "none")).lower()
    if auth_type == "bearer" and token:
        # The agents take the gateway's own token from this header, so a caller's
        # forwarded Authorization header is never overwritten by it.
        agent["static_headers"] = {GATEWAY_TOKEN_HEADER: f"Bearer {token}"}
    if entry.get("rate_limit") is not None:
        # litellm 1.108 enforces an agent's rpm_limit in its rate limiter hook.
        agent["rpm_limit"] = entry["rate_limit"]
    return agent


def resolve_placeholders(value: Any, values: dict[str, str], where: str = "") -> Any:
    """Replace `${NAME}` in every string of `value`; raise for an unknown NAME."""
    if isinstance(value, dict):
        return {
            key: resolve_placeholders(item, values, f"{where}.{key}".lstrip("."))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            resolve_placeholders(item, values, f"{where}[{index}]")
            for index, item in enumerate(value)
        ]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise GatewayConfigError(
                f"missing {name} for ${{{name}}} in {where} of the gateway config; "
                "set it in .env"
            )
        return values[name]

    return PLACEHOLDER.sub(substitute, value)


def config_fingerprint(settings: Settings) -> str:
    """Hash what the rendered config depends on, so a change can be detected.

    That is the config file, the gateway's token and the values of the
    placeholders the file refers to; other `.env` keys do not count.
    """
    digest = hashlib.sha256()
    try:
        text = settings.gateway_config_file.read_bytes()
    except OSError:
        text = b""
    digest.update(text)
    digest.update(b"\0" + current_token(settings).encode())
    values = placeholder_values(settings)
    for name in sorted(set(PLACEHOLDER.findall(text.decode(errors="replace")))):
        digest.update(f"\0{name}={values.get(name, '')}".encode())
    return digest.hexdigest()


def placeholder_values(settings: Settings) -> dict[str, str]:
    """Return the values `${NAME}` may refer to: .env plus resolved ports and host."""
    values = {key: value for key, value in settings.env.items() if value is not None}
    for spec in SERVICES:
        values[spec.port_key] = str(settings.port(spec.name))
    values["JARVIS_VERSION"] = installed_version()
    host = settings.host
    values["JARVIS_BIND_HOST"] = "127.0.0.1" if host in WILDCARD_HOSTS else host
    return values


def installed_version() -> str:
    """Return the installed jarvisctl version, the one the agent cards report."""
    import importlib.metadata

    try:
        return importlib.metadata.version("jarvisctl")
    except importlib.metadata.PackageNotFoundError:
        # Same fallback as the agents use in a checkout that was never installed.
        return "0.0.0+unknown"


def render_runtime_config(settings: Settings) -> Path:
    """Write the proxy's config to `<run_dir>/litellm.runtime.yaml` (mode 0600)."""
    config = load_gateway_config(settings.gateway_config_file)
    _log_warnings_once(config)
    data = resolve_placeholders(config.data, placeholder_values(settings))
    token = current_token(settings)
    if not token:
        logger.warning(
            "Rendered the gateway config without a gateway token: JWT_TOKEN is "
            "empty; run `jarvisctl token refresh`"
        )
    for agent in data["agents"]:
        _check_agent_url(agent, config.path)
        if token:
            _add_gateway_token(agent, token)

    target = settings.run_dir / RUNTIME_FILE_NAME
    _write_private(target, yaml.safe_dump(data, sort_keys=False))
    logger.info(
        "Rendered gateway config with agents %s to %s",
        ", ".join(config.agent_names) or "(none)",
        target,
    )
    return target


def gateway_launch(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """Render the runtime config; return the proxy's argv and extra environment."""
    master_key = gateway_master_key(settings)
    path = render_runtime_config(settings)
    argv = [
        sys.executable,
        "-m",
        PROXY_MODULE,
        "--config",
        str(path),
        "--host",
        settings.host,
        "--port",
        str(settings.port("gateway")),
        "--num_workers",
        str(PROXY_WORKERS),
    ]
    env = dict(OFFLINE_ENV)
    env["LITELLM_MASTER_KEY"] = master_key
    env["NUM_WORKERS"] = str(PROXY_WORKERS)
    return argv, env


def gateway_master_key(settings: Settings) -> str:
    """Return LITELLM_MASTER_KEY; raise GatewayConfigError when missing or known."""
    key = (settings.env.get("LITELLM_MASTER_KEY") or "").strip()
    if not key:
        raise GatewayConfigError(
            "missing LITELLM_MASTER_KEY in .env: the gateway needs a master key; "
            "run `jarvisctl init` to generate one"
        )
    if key in KNOWN_DEFAULT_MASTER_KEYS:
        raise GatewayConfigError(
            "invalid LITELLM_MASTER_KEY in .env: it is a publicly known default "
            "key; delete the value and run `jarvisctl init` to generate a new one"
        )
    return key


def _check_agent_url(agent: dict[str, Any], path: Path) -> None:
    from urllib.parse import urlsplit

    url = agent["agent_card_params"]["url"]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GatewayConfigError(
            f"{_label(path)}: invalid url {url!r} of agent {agent['agent_name']}: "
            "expected http://host:port/"
        )


def _add_gateway_token(agent: dict[str, Any], token: str) -> None:
    headers = dict(agent.get("static_headers") or {})
    if not any(name.lower() == GATEWAY_TOKEN_HEADER.lower() for name in headers):
        headers[GATEWAY_TOKEN_HEADER] = f"Bearer {token}"
    agent["static_headers"] = headers


def _write_private(target: Path, text: str) -> None:
    """Write `text` to `target` atomically; the file is never readable by others."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private_file(target, text, RUNTIME_FILE_MODE)
    except OSError as error:
        raise GatewayConfigError(
            f"cannot write {target}: {error.strerror}; check the run directory"
        ) from None


def _log_warnings_once(config: GatewayConfig) -> None:
    key = str(config.path)
    if config.warnings and key not in _warned_paths:
        _warned_paths.add(key)
        for warning in config.warnings:
            logger.warning("%s", warning)


def _label(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
