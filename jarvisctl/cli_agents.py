"""Commands that talk to the agents: token, invoke and agents.

Command bodies import the heavy parts (httpx, the a2a SDK, Rich views) when
they run, so `jarvisctl --help` stays fast.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import typer

from jarvisctl.errors import JarvisError, UsageError

if TYPE_CHECKING:
    from jarvisctl.config import Settings
    from jarvisctl.invoke import AgentRef

# Timeout of each probe of the agents overview. A local service responds in
# milliseconds.
OVERVIEW_TIMEOUT_SECONDS = 2.0
CARD_PATH = "/.well-known/agent-card.json"

logger = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add the token sub-commands, invoke and agents to the CLI."""
    token_app = typer.Typer(
        help="Log in for the gateway's JWT and inspect it.", no_args_is_help=True
    )
    token_app.command("refresh")(token_refresh)
    token_app.command("show")(token_show)
    app.add_typer(token_app, name="token")
    app.command("invoke")(invoke_command)
    app.command("agents")(agents_command)


def token_refresh(
    user: str = typer.Option("admin", "--user", "-u", help="User to log in as."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first stdin line."
    ),
) -> None:
    """Log in at the auth service and store the JWT as JWT_TOKEN in .env.

    A running gateway is restarted so it relays the new token.

    Example: jarvisctl token refresh --user admin
    """
    from jarvisctl import tokens, views
    from jarvisctl.config import load_settings

    settings = load_settings()
    password = _read_password(settings, user, password_stdin)
    info = tokens.refresh_token(settings, user, password)
    restarted = _restart_gateway(settings)
    views.print_token_refreshed(info, restarted)


def token_show(
    reveal: bool = typer.Option(False, "--reveal", help="Print the whole token."),
) -> None:
    """Show who JWT_TOKEN speaks for, when it expires and whether auth accepts it.

    Exits 1 when the token is expired or rejected.

    Example: jarvisctl token show
    """
    from jarvisctl import tokens, views
    from jarvisctl.config import load_settings

    settings = load_settings()
    token = tokens.current_token(settings)
    if not token:
        raise JarvisError("JWT_TOKEN is empty in .env; run `jarvisctl token refresh`")
    info = tokens.token_info(token)
    if info is None:
        raise JarvisError(
            "JWT_TOKEN in .env is not a JWT; run `jarvisctl token refresh`"
        )
    check = tokens.check_token(settings, token)
    views.print_token_status(info, check, token if reveal else None)
    if info.expired():
        raise JarvisError("JWT_TOKEN has expired; run `jarvisctl token refresh`")
    if check.accepted is False:
        raise JarvisError(
            f"the auth service rejected JWT_TOKEN ({check.reason}); run "
            "`jarvisctl token refresh`"
        )


def invoke_command(
    agent: str = typer.Argument(
        ..., help="Agent: short name, card name or unique prefix, any case."
    ),
    text: str = typer.Argument(..., help="The message to send."),
    direct: bool = typer.Option(
        False, "--direct", help="Call the agent itself instead of the gateway."
    ),
    user: str | None = typer.Option(
        None,
        "--user",
        "-u",
        help="Log in as this user and call with their JWT. The password comes "
        "from --password-stdin, else from .env (JARVIS_ADMIN_PASSWORD for admin, "
        "JARVIS_DEMO_PASSWORD for the demo users), else a hidden prompt.",
    ),
    password_stdin: bool = typer.Option(
        False,
        "--password-stdin",
        help="Read --user's password from the first line of stdin; "
        "it takes precedence over the password in .env.",
    ),
    stream: bool = typer.Option(
        False, "--stream", help="Print updates as they arrive."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    timeout: float = typer.Option(
        60.0, "--timeout", min=0.1, help="Seconds to wait for the answer."
    ),
) -> None:
    """Send one message to an agent and print its answer.

    Example: jarvisctl invoke tickets "show my open tickets" --user vishal
    """
    from jarvisctl import invoke, views
    from jarvisctl.config import load_settings

    invoke.check_text(text)
    settings = load_settings()
    ref = invoke.resolve_agent(agent, invoke.known_agents(settings))
    password = _read_password(settings, user, password_stdin) if user else None
    on_update = views.print_invoke_update if stream and not json_output else None
    result = invoke.invoke(
        settings,
        ref,
        text,
        direct=direct,
        user=user,
        password=password,
        stream=stream,
        timeout=timeout,
        on_update=on_update,
    )
    if json_output:
        views.print_json(asdict(result))
    else:
        views.print_invoke_result(result)
    if result.state in ("failed", "rejected", "canceled"):
        first_line = (result.text or "no message").splitlines()[0]
        raise JarvisError(f"agent {ref.name} {result.state} the request: {first_line}")


@dataclass
class AgentRow:
    """One agent as the gateway, the agent itself and the registry see it."""

    name: str
    card_name: str
    gateway: str = "unknown"
    gateway_url: str | None = None
    gateway_version: str | None = None
    live: str = "down"
    live_url: str | None = None
    live_version: str | None = None
    registry: str = "unknown"
    registry_url: str | None = None
    registry_version: str | None = None
    problems: list[str] = field(default_factory=list)


def agents_command(
    json_output: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """Compare each agent in the gateway, its live card and the registry.

    Exits 1 when any agent is down, unregistered, missing or differs.

    Example: jarvisctl agents
    """
    from jarvisctl import views
    from jarvisctl.config import load_settings
    from jarvisctl.gateway import load_gateway_config

    settings = load_settings()
    config = load_gateway_config(settings.gateway_config_file)
    if not json_output:
        for warning in config.warnings:
            views.print_warning(warning)
    rows = collect_agent_rows(settings)
    if json_output:
        views.print_json([asdict(row) for row in rows])
    else:
        views.print_agents(rows)
    if any(row.problems for row in rows):
        raise typer.Exit(1)


def collect_agent_rows(settings: Settings) -> list[AgentRow]:
    """Probe the gateway, each agent's card and the registry; flag mismatches."""
    from concurrent.futures import ThreadPoolExecutor

    from jarvisctl.invoke import known_agents

    refs = known_agents(settings)
    with ThreadPoolExecutor(max_workers=len(refs) + 2) as pool:
        gateway_future = pool.submit(_gateway_agents, settings)
        registry_future = pool.submit(_registry_records, settings)
        live_futures = [pool.submit(_live_card, ref.url) for ref in refs]
        gateway = gateway_future.result()
        registry = registry_future.result()
        live_cards = [future.result() for future in live_futures]

    rows = [
        _compare(ref, gateway, registry, card)
        for ref, card in zip(refs, live_cards, strict=True)
    ]
    known_names = {ref.card_name for ref in refs}
    for record in (registry or {}).values():
        if record["name"] not in known_names:
            row = AgentRow(name=record["name"], card_name=record["name"])
            row.registry = "registered"
            row.registry_url = record.get("url")
            row.registry_version = record.get("version")
            row.problems.append("registered but not in the gateway config")
            rows.append(row)
    return rows


def _compare(
    ref: AgentRef,
    gateway: dict[str, dict[str, Any]] | None,
    registry: dict[str, dict[str, Any]] | None,
    card: dict[str, Any] | None,
) -> AgentRow:
    row = AgentRow(name=ref.name, card_name=ref.card_name)
    if gateway is None:
        row.gateway = "down"
        row.problems.append("gateway not reachable")
    elif ref.name in gateway:
        params = gateway[ref.name].get("agent_card_params") or {}
        row.gateway = "listed"
        row.gateway_url = params.get("url")
        row.gateway_version = params.get("version")
    else:
        row.gateway = "missing"
        row.problems.append("missing from the gateway")

    if card is not None:
        row.live = "up"
        row.live_url = _card_url(card)
        row.live_version = card.get("version")

    record = (registry or {}).get(ref.card_name)
    if registry is None:
        row.registry = "down"
    elif record is None:
        row.registry = "absent"
        if card is not None:
            row.problems.append("running but not registered")
    else:
        row.registry = "registered"
        row.registry_url = record.get("url")
        row.registry_version = record.get("version")
        if card is None:
            row.problems.append("registered but down")
    _flag_differences(row)
    return row


def _flag_differences(row: AgentRow) -> None:
    if row.live == "up":
        for source, url, version in (
            ("gateway", row.gateway_url, row.gateway_version),
            ("registry", row.registry_url, row.registry_version),
        ):
            if url and row.live_url and _same_url(url, row.live_url) is False:
                row.problems.append(f"{source} URL {url} differs from {row.live_url}")
            if version and row.live_version and version != row.live_version:
                row.problems.append(
                    f"{source} version {version} differs from {row.live_version}"
                )
    elif row.gateway == "listed" and not row.problems:
        row.problems.append("agent down")


def _same_url(left: str, right: str) -> bool:
    return left.rstrip("/") == right.rstrip("/")


def _card_url(card: dict[str, Any]) -> str | None:
    interfaces = card.get("supportedInterfaces")
    if isinstance(interfaces, list):
        for interface in interfaces:
            if isinstance(interface, dict) and interface.get("url"):
                return str(interface["url"])
    url = card.get("url")
    return str(url) if url else None


def _gateway_agents(settings: Settings) -> dict[str, dict[str, Any]] | None:
    import httpx

    from jarvisctl.gateway import gateway_master_key

    try:
        key = gateway_master_key(settings)
        response = httpx.get(
            f"{settings.url('gateway')}/v1/agents",
            headers={"Authorization": f"Bearer {key}"},
            timeout=OVERVIEW_TIMEOUT_SECONDS,
        )
        response.raise_for_status()
        agents = response.json()
    except (httpx.HTTPError, ValueError, JarvisError) as error:
        logger.debug("Failed to list gateway agents: %s", error)
        return None
    if isinstance(agents, dict):
        agents = agents.get("agents", [])
    return {
        agent["agent_name"]: agent
        for agent in agents
        if isinstance(agent, dict) and "agent_name" in agent
    }


def _registry_records(settings: Settings) -> dict[str, dict[str, Any]] | None:
    import httpx

    try:
        response = httpx.get(
            f"{settings.url('registry')}/agents", timeout=OVERVIEW_TIMEOUT_SECONDS
        )
        response.raise_for_status()
        records = response.json()
    except (httpx.HTTPError, ValueError) as error:
        logger.debug("Failed to list registry agents: %s", error)
        return None
    return {
        record["name"]: record
        for record in records
        if isinstance(record, dict) and "name" in record
    }


def _live_card(base_url: str) -> dict[str, Any] | None:
    import httpx

    try:
        response = httpx.get(
            base_url.rstrip("/") + CARD_PATH, timeout=OVERVIEW_TIMEOUT_SECONDS
        )
        response.raise_for_status()
        card = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def _read_password(settings: Settings, user: str, from_stdin: bool) -> str | None:
    """Return the password from stdin, None when .env has it, else prompt."""
    from jarvisctl import tokens

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("no password on standard input; pipe it in one line")
        return password
    if tokens.default_password(settings, user):
        return None
    return typer.prompt(f"Password for {user}", hide_input=True)


def _restart_gateway(settings: Settings) -> bool:
    """Restart a running gateway and wait until it is healthy again.

    Returns False when no supervisor runs, so there is no gateway to restart.
    """
    from jarvisctl import stack

    if stack.ping_supervisor(settings) is None:
        return False
    result = stack.restart(settings, ["gateway"])
    if result.failures:
        failure = result.failures[0]
        raise JarvisError(
            f"stored the new token, but the gateway did not come back: "
            f"{failure.reason}; run `jarvisctl logs gateway`"
        )
    return True
