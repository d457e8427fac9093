"""The shared A2A server of every agent: card, SDK clients, auth, hostile input."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Iterator

import httpx
import jwt
import pytest
from conftest import (
    ROOT,
    Project,
    RunningService,
    agent_answer,
    agent_token,
    ask_agent,
    login,
    make_project,
)

from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import get_data_parts
from a2a.types.a2a_pb2 import (
    AgentCard,
    Artifact,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
)
from services.common.agent import MAX_BODY_BYTES, stack_version
from services.common.settings import JWT_AUDIENCE, JWT_ISSUER
from services.common.headers import GATEWAY_TOKEN_HEADER

FINOPS_READY = (ROOT / "services" / "finops" / "skills.py").is_file()
AGENTS = {
    "tickets": ("TicketsAgent", "show my tickets", "list_tickets"),
    "oxygen": ("OxygenAgent", "show my courses", "my_courses"),
    "finops": ("FinOpsAgent", "total cost", None),
}
AGENT_PARAMS = [
    "tickets",
    "oxygen",
    pytest.param(
        "finops",
        marks=pytest.mark.skipif(not FINOPS_READY, reason="finops skills missing"),
    ),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Start auth and every agent once for the whole module."""
    project = make_project(tmp_path_factory.mktemp("agents"))
    names = ["auth", "tickets", "oxygen"] + (["finops"] if FINOPS_READY else [])
    started: list[RunningService] = []
    try:
        for name in names:
            started.append(project.start(name))
        yield {"project": project, **{s.name: s for s in started}}
    finally:
        for running in reversed(started):
            running.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rpc_body(method: str, params: dict) -> dict:
    return {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}


def text_message(text: str) -> Message:
    return Message(
        role=Role.ROLE_USER, message_id=uuid.uuid4().hex, parts=[Part(text=text)]
    )


def legacy_only(card: AgentCard) -> AgentCard:
    """Return the card with only its 0.3 interfaces, so a client speaks 0.3."""
    legacy = AgentCard()
    legacy.CopyFrom(card)
    del legacy.supported_interfaces[:]
    legacy.supported_interfaces.extend(
        i for i in card.supported_interfaces if i.protocol_version == "0.3"
    )
    return legacy


async def sdk_send(
    url: str, token: str, text: str, legacy: bool = False, streaming: bool = False
) -> tuple[list[StreamResponse], Task, list[str]]:
    """Send `text` with the a2a-sdk client, then fetch the task.

    Returns the events, the fetched task and the JSON-RPC methods on the wire.
    """
    methods: list[str] = []

    async def record_method(request: httpx.Request) -> None:
        if request.method == "POST":
            methods.append(json.loads(request.content)["method"])

    async with httpx.AsyncClient(
        headers=bearer(token), timeout=30, event_hooks={"request": [record_method]}
    ) as http:
        card = await A2ACardResolver(http, url).get_agent_card()
        if legacy:
            card = legacy_only(card)
        config = ClientConfig(httpx_client=http, streaming=streaming)
        client = ClientFactory(config).create(card)
        request = SendMessageRequest(message=text_message(text))
        events = [event async for event in client.send_message(request)]
        task = await client.get_task(GetTaskRequest(id=task_id_of(events)))
    return events, task, methods


def task_id_of(events: list[StreamResponse]) -> str:
    for event in events:
        if event.HasField("task"):
            return event.task.id
        if event.HasField("status_update"):
            return event.status_update.task_id
    raise AssertionError(f"no task in {events}")


def artifacts_of(task: Task) -> dict[str, Artifact]:
    return {artifact.name: artifact for artifact in task.artifacts}


@pytest.mark.parametrize("agent", AGENT_PARAMS)
def test_card_fields(stack: dict, agent: str) -> None:
    project: Project = stack["project"]
    card = httpx.get(f"{stack[agent].url}/.well-known/agent-card.json").json()

    assert card["name"] == AGENTS[agent][0]
    assert card["version"] == stack_version()
    assert card["capabilities"]["streaming"] is True
    assert card["skills"]
    for skill in card["skills"]:
        assert skill["id"]
        assert skill["description"]
        assert skill["examples"], skill["id"]
    interfaces = {i["protocolVersion"]: i for i in card["supportedInterfaces"]}
    assert set(interfaces) == {"1.0", "0.3"}
    for interface in interfaces.values():
        assert interface["url"] == f"http://127.0.0.1:{project.port(agent)}/"
        assert interface["protocolBinding"] == "JSONRPC"
    scheme = card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]
    assert scheme["scheme"] == "Bearer"
    assert scheme["bearerFormat"] == "JWT"
    assert card["securityRequirements"] == [{"schemes": {"bearer": {}}}]
    assert "text/plain" in card["defaultInputModes"]
    assert "application/json" in card["defaultOutputModes"]


@pytest.mark.parametrize("agent", AGENT_PARAMS)
def test_health_is_public(stack: dict, agent: str) -> None:
    response = httpx.get(f"{stack[agent].url}/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": agent}


@pytest.mark.parametrize("legacy", [False, True], ids=["v1.0", "v0.3"])
@pytest.mark.parametrize("agent", AGENT_PARAMS)
def test_sdk_client_gets_artifacts(stack: dict, agent: str, legacy: bool) -> None:
    token = agent_token(stack["project"], "vishal")
    text = AGENTS[agent][1]
    expected_methods = ["SendMessage", "GetTask"]
    if legacy:
        expected_methods = ["message/send", "tasks/get"]

    _, task, methods = asyncio.run(
        sdk_send(stack[agent].url, token, text, legacy=legacy)
    )

    assert methods == expected_methods
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    artifacts = artifacts_of(task)
    assert set(artifacts) == {"answer", "records"}
    assert artifacts["answer"].parts[0].text
    records = get_data_parts(artifacts["records"].parts)[0]
    assert "records" in records
    if AGENTS[agent][2]:
        assert records["skill"] == AGENTS[agent][2]


@pytest.mark.parametrize("legacy", [False, True], ids=["v1.0", "v0.3"])
def test_streaming_sends_updates(stack: dict, legacy: bool) -> None:
    token = agent_token(stack["project"], "vishal")
    url = stack["oxygen"].url

    events, task, methods = asyncio.run(
        sdk_send(url, token, "show my courses", legacy, streaming=True)
    )

    states = [
        event.status_update.status.state
        for event in events
        if event.HasField("status_update")
    ]
    names = [
        event.artifact_update.artifact.name
        for event in events
        if event.HasField("artifact_update")
    ]
    assert methods[0] == ("message/stream" if legacy else "SendStreamingMessage")
    assert TaskState.TASK_STATE_WORKING in states
    assert states[-1] == TaskState.TASK_STATE_COMPLETED
    assert names == ["answer", "records"]
    assert task.status.state == TaskState.TASK_STATE_COMPLETED


def post_rpc(
    url: str, body: dict | bytes, headers: dict[str, str], version: str = "1.0"
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = headers | {"A2A-Version": version, "Content-Type": "application/json"}
    return httpx.post(url, content=content, headers=headers, timeout=30)


def test_get_task_is_private(stack: dict) -> None:
    project = stack["project"]
    url = stack["tickets"].url
    reply = ask_agent(url, "show my tickets", bearer(agent_token(project, "vishal")))
    task_id = reply["result"]["task"]["id"]
    get_task = rpc_body("GetTask", {"id": task_id})

    own = post_rpc(url, get_task, bearer(agent_token(project, "vishal")))
    other = post_rpc(url, get_task, bearer(agent_token(project, "happy")))

    assert own.json()["result"]["id"] == task_id
    assert own.json()["result"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert other.json()["error"]["code"] == -32001


def test_real_login_token_reaches_skill(stack: dict) -> None:
    token = login(stack["auth"].url, "vishal", "demo-test-password")

    text, data = agent_answer(stack["tickets"].url, token, "create VPN ticket")

    assert data["records"][0]["owner"] == "vishal"
    assert text.startswith("Created ticket **")


def bad_tokens(secret: str) -> dict[str, str]:
    """Return tokens that must be rejected, by the reason they are invalid."""
    now = int(time.time())
    claims = {
        "sub": "vishal",
        "role": "developer",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "jti": uuid.uuid4().hex,
    }
    expired = claims | {"iat": now - 1200, "nbf": now - 1200, "exp": now - 600}
    return {
        "expired": jwt.encode(expired, secret),
        "forged": jwt.encode(claims, secrets.token_hex(32)),
        "wrong_audience": jwt.encode(claims | {"aud": "someone-else"}, secret),
        "wrong_issuer": jwt.encode(claims | {"iss": "someone-else"}, secret),
        "alg_none": jwt.encode(claims, None, algorithm="none"),
        "not_a_jwt": "sk-not-a-token",
    }


BAD_TOKEN_CASES = [
    "missing",
    "expired",
    "forged",
    "wrong_audience",
    "wrong_issuer",
    "alg_none",
    "not_a_jwt",
]
VALID_MESSAGE = {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "hi"}]}


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
def test_bad_token_gets_401(stack: dict, case: str) -> None:
    secret = stack["project"].env["JWT_SECRET_KEY"]
    headers = {} if case == "missing" else bearer(bad_tokens(secret)[case])
    body = rpc_body("SendMessage", {"message": VALID_MESSAGE})

    response = post_rpc(stack["tickets"].url, body, headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]
    if case == "missing":
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"error": "missing bearer token"}


def gateway_header(token: str) -> dict[str, str]:
    return {GATEWAY_TOKEN_HEADER: f"Bearer {token}"}


def gateway_token(project: Project) -> str:
    return agent_token(project, "jarvis-gateway", "service")


def owner_of_new_ticket(reply: dict) -> str:
    task = reply["result"]["task"]
    records = next(a for a in task["artifacts"] if a["name"] == "records")
    return records["parts"][0]["data"]["records"][0]["owner"]


def test_caller_token_wins_over_gateway(stack: dict) -> None:
    project = stack["project"]
    headers = bearer(agent_token(project, "vishal"))
    headers |= gateway_header(gateway_token(project))

    reply = ask_agent(stack["tickets"].url, "create VPN ticket", headers)

    assert owner_of_new_ticket(reply) == "vishal"


def test_gateway_token_behind_master_key(stack: dict) -> None:
    project = stack["project"]
    headers = bearer(project.env["LITELLM_MASTER_KEY"])
    headers |= gateway_header(gateway_token(project))

    reply = ask_agent(stack["tickets"].url, "create VPN ticket", headers)

    assert owner_of_new_ticket(reply) == "jarvis-gateway"


def test_gateway_token_alone_is_accepted(stack: dict) -> None:
    headers = gateway_header(gateway_token(stack["project"]))

    reply = ask_agent(stack["tickets"].url, "create VPN ticket", headers)

    assert owner_of_new_ticket(reply) == "jarvis-gateway"


def test_invalid_caller_jwt_ignores_gateway(stack: dict) -> None:
    project = stack["project"]
    forged = bad_tokens(project.env["JWT_SECRET_KEY"])["forged"]
    headers = bearer(forged) | gateway_header(gateway_token(project))

    response = post_rpc(stack["tickets"].url, rpc_body("GetTask", {"id": "x"}), headers)

    assert response.status_code == 401
    assert response.json() == {"error": "bad signature"}


def encoded(method: str, params: object) -> bytes:
    body = {"jsonrpc": "2.0", "id": 3, "method": method, "params": params}
    return json.dumps(body).encode()


def deep_object(depth: int) -> dict:
    return json.loads('{"a":' * depth + "1" + "}" * depth)


# Valid JSON, but protobuf (7.36) rejects Struct values nested over 100 levels.
DEEP_METADATA_MESSAGE = VALID_MESSAGE | {"metadata": deep_object(300)}
HOSTILE_CASES = {
    "malformed_json": (b'{"jsonrpc": "2.0", "id": 1, "method"', -32700),
    "not_utf8": (b"\xff\xfe\x00{", -32700),
    "jsonrpc_1_0": (b'{"jsonrpc": "1.0", "id": 1, "method": "GetTask"}', -32600),
    "batch": (b"[" + encoded("GetTask", {"id": "x"}) + b"]", -32600),
    "plain_string": (b'"hello"', -32600),
    "deep_nesting": (b"[" * 100_000 + b"]" * 100_000, -32600),
    "unknown_method": (encoded("DropTables", {}), -32601),
    "message_without_parts": (
        encoded("SendMessage", {"message": VALID_MESSAGE | {"parts": []}}),
        -32602,
    ),
    "message_as_string": (encoded("SendMessage", {"message": "hi"}), -32602),
    "task_id_as_number": (encoded("GetTask", {"id": 5}), -32602),
    "deep_metadata": (
        encoded("SendMessage", {"message": DEEP_METADATA_MESSAGE}),
        -32602,
    ),
    "unknown_task": (encoded("GetTask", {"id": "no-such-task"}), -32001),
    "unknown_task_v03": (encoded("tasks/get", {"id": "no-such-task"}), -32001),
}


@pytest.mark.parametrize("case", list(HOSTILE_CASES))
def test_hostile_json_rpc(stack: dict, case: str) -> None:
    body, code = HOSTILE_CASES[case]
    headers = bearer(agent_token(stack["project"], "vishal"))
    version = "0.3" if case.endswith("v03") else "1.0"

    response = post_rpc(stack["tickets"].url, body, headers, version)

    assert response.status_code == 200
    assert response.json()["error"]["code"] == code
    assert "Traceback" not in response.text


def test_oversized_body_gets_413(stack: dict) -> None:
    headers = bearer(agent_token(stack["project"], "vishal"))
    message = VALID_MESSAGE | {"parts": [{"text": "x" * MAX_BODY_BYTES}]}

    response = post_rpc(
        stack["tickets"].url, rpc_body("SendMessage", {"message": message}), headers
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == -32600


def test_chunked_oversized_body_gets_413(stack: dict) -> None:
    headers = bearer(agent_token(stack["project"], "vishal"))
    chunk = b" " * 65536

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY_BYTES // len(chunk) + 2):
            yield chunk

    response = httpx.post(
        stack["tickets"].url, content=chunks(), headers=headers, timeout=30
    )

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["error"]["code"] == -32600


def test_message_without_text_is_rejected(stack: dict) -> None:
    headers = bearer(agent_token(stack["project"], "vishal"))
    message = VALID_MESSAGE | {"parts": [{"data": {"question": "my tickets"}}]}

    response = post_rpc(
        stack["tickets"].url, rpc_body("SendMessage", {"message": message}), headers
    )

    status = response.json()["result"]["task"]["status"]
    assert status["state"] == "TASK_STATE_REJECTED"
    assert "the message has no text part" in status["message"]["parts"][0]["text"]


def test_answer_logged_without_token(stack: dict) -> None:
    token = agent_token(stack["project"], "alex")
    agent_answer(stack["oxygen"].url, token, "show my courses")

    log = stack["oxygen"].log()

    assert "Answered oxygen request from alex with skill my_courses in" in log
    assert token not in log
