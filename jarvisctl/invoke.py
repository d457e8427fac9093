"""Send one message to an agent with the a2a SDK, through the gateway or direct.

Through the gateway the client presents the master key; a user's JWT travels in
`x-a2a-<agent>-authorization`, which LiteLLM forwards to the agent as
`Authorization`. Without a user, the agent gets the gateway's own token.
Direct calls put the JWT into `Authorization` themselves.

The a2a client is built from an agent card assembled from the gateway config,
not fetched, which saves an HTTP round trip per call.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jarvisctl.config import Settings
from jarvisctl.errors import JarvisError, UsageError
from jarvisctl.gateway import (
    GatewayConfig,
    gateway_master_key,
    load_gateway_config,
    placeholder_values,
    resolve_placeholders,
)
from jarvisctl.tokens import current_token, default_password, login, token_info

DEFAULT_TIMEOUT_SECONDS = 60.0
# Protocol version of a card without `protocolVersion`, as a2a-sdk 1.3 reads it.
DEFAULT_PROTOCOL_VERSION = "0.3.0"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentRef:
    """An agent known to jarvisctl: its gateway name, card name and direct URL."""

    name: str
    card_name: str
    url: str
    # The A2A protocol version and streaming capability the gateway's card for
    # this agent declares, taken from its `agent_card_params`.
    protocol_version: str = DEFAULT_PROTOCOL_VERSION
    streaming: bool = False


@dataclass
class InvokeResult:
    """The reply of an agent to one message."""

    agent: str
    via: str
    state: str | None = None
    text: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    # Field order of the records as the agent listed them, when it did.
    columns: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


def known_agents(
    settings: Settings, config: GatewayConfig | None = None
) -> list[AgentRef]:
    """List the agents of the gateway config, with URLs resolved from `.env`."""
    config = config or load_gateway_config(settings.gateway_config_file)
    values = placeholder_values(settings)
    refs = []
    for agent in config.agents:
        card = agent["agent_card_params"]
        url = resolve_placeholders(card["url"], values, f"{agent['agent_name']}.url")
        capabilities = card.get("capabilities") or {}
        refs.append(
            AgentRef(
                agent["agent_name"],
                card["name"],
                url,
                protocol_version=str(
                    card.get("protocolVersion") or DEFAULT_PROTOCOL_VERSION
                ),
                streaming=bool(capabilities.get("streaming")),
            )
        )
    return refs


def resolve_agent(name: str, agents: list[AgentRef]) -> AgentRef:
    """Match `name` to a short name, card name or unique prefix (any case)."""
    wanted = name.strip().lower()
    for agent in agents:
        if wanted in (agent.name.lower(), agent.card_name.lower()):
            return agent
    matches = [
        agent
        for agent in agents
        if agent.name.lower().startswith(wanted)
        or agent.card_name.lower().startswith(wanted)
    ]
    if wanted and len(matches) == 1:
        return matches[0]
    listing = ", ".join(f"{agent.name} ({agent.card_name})" for agent in agents)
    if len(matches) > 1:
        raise UsageError(f"ambiguous agent {name!r}: matches {listing}")
    raise UsageError(f"unknown agent {name!r}: choose one of {listing}")


def invoke(
    settings: Settings,
    agent: AgentRef,
    text: str,
    *,
    direct: bool = False,
    user: str | None = None,
    password: str | None = None,
    stream: bool = False,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    on_update: Callable[[str], None] | None = None,
) -> InvokeResult:
    """Send `text` to `agent` and wait for the reply; raise JarvisError."""
    check_text(text)
    user_token = None
    if user:
        user_token = login(settings, user, _password(settings, user, password))
    if direct:
        base_url = agent.url.rstrip("/")
        card = _agent_card(agent, agent.url, protocol_version=None)
        token = user_token or _gateway_token(settings)
        headers = {"Authorization": f"Bearer {token}"}
        target = f"agent {agent.name}"
    else:
        base_url = f"{settings.url('gateway')}/a2a/{agent.name}"
        card = _agent_card(agent, base_url, agent.protocol_version)
        headers = {"Authorization": f"Bearer {gateway_master_key(settings)}"}
        if user_token:
            headers[f"x-a2a-{agent.name}-authorization"] = f"Bearer {user_token}"
        target = "gateway"
    result = InvokeResult(agent=agent.name, via="direct" if direct else "gateway")
    call = _send(card, base_url, headers, text, stream, timeout, result, on_update)
    try:
        asyncio.run(asyncio.wait_for(call, timeout))
    except (asyncio.TimeoutError, TimeoutError):
        raise JarvisError(
            f"timed out after {timeout:g} s waiting for {agent.name}; retry with "
            "a larger --timeout or check `jarvisctl logs`"
        ) from None
    except Exception as error:  # noqa: BLE001 - mapped to one line below
        raise _explain(error, agent, target, base_url, user_token, settings) from None
    return result


def check_text(text: str) -> None:
    """Raise UsageError when `text` cannot be sent as UTF-8.

    Python decodes undecodable argv bytes to lone surrogates, which fail here.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise UsageError(
            f"invalid text: not valid UTF-8 at character {error.start + 1}; "
            "pass the message as UTF-8 text"
        ) from None


def whole_numbers(value: Any) -> Any:
    """Return `value` with each float that has no fraction turned into an int.

    Numbers pass through protobuf Struct as doubles, so an agent's 12301
    arrives as 12301.0. Strings are left alone.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    return value


def _agent_card(agent: AgentRef, url: str, protocol_version: str | None) -> Any:
    """Build the AgentCard the a2a client needs to call `agent` at `url`.

    It has what the fetched card would give the client: the JSON-RPC interface,
    its protocol version and the streaming capability. None for
    `protocol_version` means the a2a SDK's current version, which the agents
    serve because they run the same SDK.
    """
    from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface
    from a2a.utils.constants import PROTOCOL_VERSION_CURRENT, TransportProtocol

    interface = AgentInterface(
        url=url,
        protocol_binding=TransportProtocol.JSONRPC,
        protocol_version=protocol_version or PROTOCOL_VERSION_CURRENT,
    )
    return AgentCard(
        name=agent.card_name,
        supported_interfaces=[interface],
        capabilities=AgentCapabilities(streaming=agent.streaming),
    )


async def _send(
    card: Any,
    base_url: str,
    headers: dict[str, str],
    text: str,
    stream: bool,
    timeout: float,
    result: InvokeResult,
    on_update: Callable[[str], None] | None,
) -> None:
    import httpx
    from a2a.client import ClientConfig, ClientFactory
    from a2a.helpers.proto_helpers import new_text_message
    from a2a.types.a2a_pb2 import Role, SendMessageRequest

    async with httpx.AsyncClient(
        headers=headers, timeout=timeout, verify=_tls_context(base_url)
    ) as http:
        factory = ClientFactory(ClientConfig(streaming=stream, httpx_client=http))
        client = factory.create(card)
        message = new_text_message(text, role=Role.ROLE_USER)
        request = SendMessageRequest(message=message)
        async for event in client.send_message(request):
            _absorb(event, result, on_update)


def _tls_context(url: str) -> ssl.SSLContext | bool:
    """Return the `verify` argument of the httpx client that calls `url`.

    By default httpx 0.29 loads the certifi CA bundle for each client (about
    30 ms on a 2-core machine), though a plain http:// URL never uses it. The
    context returned for such a URL trusts no CA but still requires a valid
    certificate, so a TLS connection would fail rather than go unverified.
    """
    if not url.startswith("http://"):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _absorb(
    event: Any, result: InvokeResult, on_update: Callable[[str], None] | None
) -> None:
    """Fold one StreamResponse into `result`; report progress to `on_update`."""
    from a2a.helpers.proto_helpers import get_data_parts, get_text_parts
    from google.protobuf.json_format import MessageToDict

    kind = event.WhichOneof("payload")
    payload = getattr(event, kind)
    data = whole_numbers(MessageToDict(payload))
    if kind == "task":
        result.raw = data
        result.state = _state_name(payload.status.state)
        for artifact in payload.artifacts:
            parts = artifact.parts
            _add_parts(result, get_text_parts(parts), get_data_parts(parts))
        status_text = get_text_parts(payload.status.message.parts)
        if not payload.artifacts and status_text:
            result.text = "\n".join(status_text)
    elif kind == "message":
        result.raw = data
        _add_parts(result, get_text_parts(payload.parts), get_data_parts(payload.parts))
    elif kind == "status_update":
        result.state = _state_name(payload.status.state)
        result.raw.setdefault("statusUpdates", []).append(data)
        status_text = get_text_parts(payload.status.message.parts)
        if status_text and not result.text:
            result.text = "\n".join(status_text)
        if on_update:
            detail = f": {status_text[0]}" if status_text else ""
            on_update(f"{result.state}{detail}")
    elif kind == "artifact_update":
        parts = payload.artifact.parts
        _add_parts(result, get_text_parts(parts), get_data_parts(parts))
        result.raw.setdefault("artifacts", []).append(data.get("artifact", {}))
        if on_update:
            artifact = payload.artifact
            on_update(f"artifact {artifact.name or artifact.artifact_id}")


def _add_parts(result: InvokeResult, texts: list[str], data_parts: list[Any]) -> None:
    if texts:
        result.text = "\n".join(filter(None, [result.text, *texts]))
    for data in data_parts:
        data = whole_numbers(data)
        records = data.get("records") if isinstance(data, dict) else data
        columns = data.get("columns") if isinstance(data, dict) else None
        if isinstance(columns, list):
            result.columns.extend(str(name) for name in columns)
        if isinstance(records, list):
            result.records.extend(item for item in records if isinstance(item, dict))


def _state_name(state: int) -> str:
    from a2a.types.a2a_pb2 import TaskState

    # TASK_STATE_INPUT_REQUIRED -> input-required
    return TaskState.Name(state).removeprefix("TASK_STATE_").lower().replace("_", "-")


def _password(settings: Settings, user: str, password: str | None) -> str:
    found = password or default_password(settings, user)
    if not found:
        raise UsageError(
            f"no password for {user}: pass --password-stdin or set it in .env"
        )
    return found


def _gateway_token(settings: Settings) -> str:
    token = current_token(settings)
    if not token:
        raise JarvisError("JWT_TOKEN is empty in .env; run `jarvisctl token refresh`")
    return token


def _explain(
    error: BaseException,
    agent: AgentRef,
    target: str,
    base_url: str,
    user_token: str | None,
    settings: Settings,
) -> JarvisError:
    """Turn an a2a client or HTTP failure into one line with the fix."""
    if isinstance(error, JarvisError):
        return error
    status, rpc_error = _http_failure(error)
    code = _jsonrpc_code(error)
    message = _message(error)
    if rpc_error is not None:
        code, message = rpc_error.get("code"), str(rpc_error.get("message", ""))
    lowered = message.lower()

    rejected = "401 unauthorized" in lowered or "403 forbidden" in lowered
    if status in (401, 403) or rejected:
        reason = _token_reason(settings, user_token)
        fix = "run `jarvisctl token refresh`"
        if user_token:
            fix = "log in again with --user"
        return JarvisError(f"agent {agent.name} rejected the token ({reason}); {fix}")
    # litellm 1.108 answers a wrong master key with HTTP 400 "No connected db".
    if target == "gateway" and status == 400 and rpc_error is None:
        return JarvisError(
            "gateway rejected the master key: check LITELLM_MASTER_KEY in .env "
            "matches the running gateway (`jarvisctl restart gateway`)"
        )
    if target == "gateway" and status == 500 and rpc_error is None:
        return JarvisError(
            "gateway rejected the call: check LITELLM_MASTER_KEY in .env"
        )
    if rpc_error is not None and "failed to fetch agent card" in lowered:
        return JarvisError(
            f"gateway cannot reach agent {agent.name} at {agent.url}; "
            "run `jarvisctl up`"
        )
    if _is_connect_error(error):
        where = base_url.split("/a2a/")[0] if target == "gateway" else base_url
        return JarvisError(f"{target} not reachable at {where}; run `jarvisctl up`")
    if code is not None:
        first_line = message.splitlines()[0][:300] if message else "no message"
        return JarvisError(f"{target} returned JSON-RPC error {code}: {first_line}")
    return JarvisError(f"call to {agent.name} via {target} failed: {message}")


def _token_reason(settings: Settings, user_token: str | None) -> str:
    info = token_info(user_token or current_token(settings))
    if info is None:
        return "not a valid JWT"
    if info.expired():
        return "expired"
    return "invalid"


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    # Bounded: the SDK never builds a cause chain this long.
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _http_failure(error: BaseException) -> tuple[int | None, dict[str, Any] | None]:
    """Return the HTTP status and JSON-RPC error object behind `error`, if any."""
    import httpx

    for cause in _causes(error):
        if isinstance(cause, httpx.HTTPStatusError):
            try:
                body = cause.response.json()
            except (ValueError, httpx.ResponseNotRead):
                body = None
            # LiteLLM's own errors, such as a wrong master key, are
            # {"error": {...}} too, but without the "jsonrpc" member.
            is_rpc = isinstance(body, dict) and body.get("jsonrpc") == "2.0"
            rpc_error = body.get("error") if is_rpc else None
            if not isinstance(rpc_error, dict):
                rpc_error = None
            return cause.response.status_code, rpc_error
        status = getattr(cause, "status_code", None)
        if isinstance(status, int):
            return status, None
    return None, None


def _is_connect_error(error: BaseException) -> bool:
    import httpx

    return any(
        isinstance(cause, (httpx.ConnectError, ConnectionRefusedError))
        for cause in _causes(error)
    )


def _jsonrpc_code(error: BaseException) -> int | None:
    from a2a.utils.errors import JSON_RPC_ERROR_CODE_MAP

    code = JSON_RPC_ERROR_CODE_MAP.get(type(error))
    if code is not None:
        return code
    text = _message(error)
    if text.startswith("JSON-RPC Error "):
        try:
            return int(text.split()[2].rstrip(":"))
        except (IndexError, ValueError):
            return None
    return None


def _message(error: BaseException) -> str:
    text = str(getattr(error, "message", None) or error)
    return text.splitlines()[0][:300] if text else type(error).__name__
