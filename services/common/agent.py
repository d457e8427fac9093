"""The A2A server every agent runs: card, JSON-RPC endpoint, auth and executor.

An agent supplies only its domain (`services.common.answers.Skills`). This module
serves it with a2a-sdk 1.3's own parts: the card and JSON-RPC route factories,
`DefaultRequestHandler`, an in-memory task store and `TaskUpdater`. The JSON-RPC
endpoint speaks A2A 1.0 (`SendMessage`, with header `A2A-Version: 1.0`) and the
0.3 method names (`message/send`) through the SDK's compatibility switch.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as ASGIMessage

from a2a.helpers.proto_helpers import new_data_part, new_task, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    Message,
    SecurityRequirement,
    SecurityScheme,
    StringList,
    TaskState,
)
from a2a.utils.constants import PROTOCOL_VERSION_0_3, PROTOCOL_VERSION_1_0
from services.common.answers import Answer, Skills
from services.common.auth import (
    BearerAuthBackend,
    IdentityContextBuilder,
    call_identity,
    reject_unauthenticated,
)
from services.common.settings import ServiceSettings
from services.common.tokens import Identity

RPC_PATH = "/"
HEALTH_PATH = "/health"
SECURITY_SCHEME = "bearer"
INPUT_MODES = ["text/plain", "application/json"]
OUTPUT_MODES = ["text/markdown", "text/plain", "application/json"]
# A request to these agents is one sentence in a few hundred bytes of JSON-RPC,
# so 1 MiB leaves room for long prompts while bounding the memory per request.
MAX_BODY_BYTES = 1024 * 1024
# Seconds an open SSE stream may take to finish during shutdown. It stays below
# the 5 s graceful shutdown that `services.common.server.serve` gives uvicorn.
STREAM_SHUTDOWN_GRACE = 2.0

logger = logging.getLogger(__name__)


def build_agent_card(
    settings: ServiceSettings, service_name: str, skills: Skills, version: str
) -> AgentCard:
    """Describe the agent: skills, JSON-RPC URL for 1.0 and 0.3, bearer JWT."""
    url = settings.url(service_name) + RPC_PATH
    return AgentCard(
        name=skills.name,
        description=skills.description,
        version=version,
        supported_interfaces=[
            AgentInterface(
                url=url, protocol_binding="JSONRPC", protocol_version=version_
            )
            for version_ in (PROTOCOL_VERSION_1_0, PROTOCOL_VERSION_0_3)
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        security_schemes={
            SECURITY_SCHEME: SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="Bearer",
                    bearer_format="JWT",
                    description="JWT issued by the jarvis auth service",
                )
            )
        },
        security_requirements=[
            SecurityRequirement(schemes={SECURITY_SCHEME: StringList()})
        ],
        default_input_modes=INPUT_MODES,
        default_output_modes=OUTPUT_MODES,
        skills=[
            AgentSkill(
                id=info.id,
                name=info.name,
                description=info.description,
                tags=info.tags,
                examples=info.examples,
            )
            for info in skills.catalog
        ],
    )


class SkillsExecutor(AgentExecutor):
    """Executor that runs each message through the agent's skills.

    A task goes working, gets an "answer" artifact (Markdown text) and a
    "records" artifact (`{"skill": ..., "columns": [...], "records": [...]}`),
    then completes.
    A message without text is rejected, and an exception in the skills fails
    the task. `answer` runs in a worker thread unless the skills set
    `blocking = False` (see `services.common.answers.Skills`).
    """

    def __init__(self, service_name: str, skills: Skills) -> None:
        self._service_name = service_name
        self._skills = skills
        self._blocking = getattr(skills, "blocking", True)

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id = context.task_id or ""
        context_id = context.context_id or ""
        if context.current_task is None:
            history = [context.message] if context.message else []
            task = new_task(
                task_id, context_id, TaskState.TASK_STATE_SUBMITTED, history=history
            )
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task_id, context_id)
        await updater.start_work()

        identity = call_identity(context.call_context.user)
        if identity is None:
            # Unreachable while the auth middleware guards the endpoint.
            logger.error("Rejected task %s: no verified identity", context.task_id)
            reason = "request not authenticated: send a bearer JWT"
            await updater.reject(agent_text(updater, reason))
            return
        text = context.get_user_input().strip()
        if not text:
            logger.info(
                "Rejected %s request from %s (task %s): message has no text part",
                self._service_name,
                identity.username,
                context.task_id,
            )
            reason = (
                "invalid request: the message has no text part. Send the request "
                f"as text, for example {self._first_example()!r}."
            )
            await updater.reject(agent_text(updater, reason))
            return

        started = time.monotonic()
        try:
            answer = await self._answer(text, identity)
        except Exception:
            logger.exception(
                "Failed to answer %s request from %s (task %s)",
                self._service_name,
                identity.username,
                context.task_id,
            )
            reason = f"internal error in {self._skills.name}, see the agent log"
            await updater.failed(agent_text(updater, reason))
            return

        await self._publish_answer(updater, answer)
        elapsed_ms = (time.monotonic() - started) * 1000
        self._log_answer(identity, answer, elapsed_ms)

    async def _answer(self, text: str, identity: Identity) -> Answer:
        # The hop to a worker thread costs more CPU than an in-memory answer,
        # so only skills that may block get one.
        if self._blocking:
            return await asyncio.to_thread(self._skills.answer, text, identity)
        return self._skills.answer(text, identity)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id = context.task_id or ""
        updater = TaskUpdater(event_queue, task_id, context.context_id or "")
        await updater.cancel()

    async def _publish_answer(self, updater: TaskUpdater, answer: Answer) -> None:
        # A data part travels as a protobuf Struct, whose keys have no order, so
        # the record fields' order is sent along for clients that show a table.
        columns: list[str] = []
        for record in answer.records:
            columns.extend(key for key in record if key not in columns)
        payload = json_safe(
            {"skill": answer.skill, "columns": columns, "records": answer.records}
        )
        await updater.add_artifact(
            [new_text_part(answer.text, media_type="text/markdown")], name="answer"
        )
        await updater.add_artifact(
            [new_data_part(payload, media_type="application/json")], name="records"
        )
        await updater.complete()

    def _first_example(self) -> str:
        for info in self._skills.catalog:
            if info.examples:
                return info.examples[0]
        return "help"

    def _log_answer(
        self, identity: Identity, answer: Answer, elapsed_ms: float
    ) -> None:
        logger.info(
            "Answered %s request from %s with skill %s in %d ms",
            self._service_name,
            identity.username,
            answer.skill,
            round(elapsed_ms),
        )


def agent_text(updater: TaskUpdater, text: str) -> Message:
    return updater.new_agent_message([new_text_part(text)])


def stack_version() -> str:
    """Return the installed jarvisctl version, which the agent cards report."""
    try:
        return importlib.metadata.version("jarvisctl")
    except importlib.metadata.PackageNotFoundError:
        # A source checkout that was never installed has no package metadata.
        return "0.0.0+unknown"


def json_safe(value: Any) -> Any:
    """Return `value` as plain JSON types; dates and other objects become strings."""
    return json.loads(json.dumps(value, default=str))


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "service": request.app.state.service_name})


class RequestLimitMiddleware:
    """Middleware that rejects JSON-RPC bodies too large, too deep or not JSON.

    The a2a-sdk 1.3 dispatcher reads a body of any size, and it reports a body
    that is not UTF-8 or that nests deeper than Python's recursion limit as
    -32603 internal error. This middleware returns 413 with -32600, -32600 and
    -32700 for those cases instead.
    """

    def __init__(
        self, app: ASGIApp, paths: set[str], max_body_bytes: int = MAX_BODY_BYTES
    ) -> None:
        self.app = app
        self._paths = paths
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in self._paths
        ):
            await self.app(scope, receive, send)
            return

        declared = Headers(scope=scope).get("content-length", "0")
        body = None
        if declared.isdigit() and int(declared) <= self._max_body_bytes:
            body = await self._read_body(receive)
        if body is None:
            logger.warning(
                "Rejected request to %s: body over %d bytes",
                scope["path"],
                self._max_body_bytes,
            )
            message = (
                f"invalid request: body larger than {self._max_body_bytes} bytes; "
                "send a shorter request"
            )
            await rpc_error(-32600, message, status_code=413)(scope, receive, send)
            return

        problem = check_json(body)
        if problem is not None:
            code, message = problem
            logger.warning("Rejected request to %s: %s", scope["path"], message)
            await rpc_error(code, message)(scope, receive, send)
            return

        body_sent = False

        async def replay() -> ASGIMessage:
            nonlocal body_sent
            if body_sent:
                return await receive()
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """Read the whole body, or return None once it passes the limit."""
        chunks: list[bytes] = []
        size = 0
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body_bytes:
                return None
            chunks.append(chunk)
            more_body = message.get("more_body", False)
        return b"".join(chunks)


def check_json(body: bytes) -> tuple[int, str] | None:
    """Return the JSON-RPC error code and message for a body that is not JSON."""
    try:
        json.loads(body)
    except RecursionError:
        return -32600, "invalid request: JSON nested too deeply"
    except ValueError as error:
        return -32700, f"parse error: body is not UTF-8 JSON ({error})"
    return None


def rpc_error(code: int, message: str, status_code: int = 200) -> JSONResponse:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status_code)


def build_agent_app(
    settings: ServiceSettings, service_name: str, skills: Skills, version: str
) -> Starlette:
    """Build the ASGI app of one agent.

    Public: `GET /.well-known/agent-card.json` and `GET /health`. Everything on
    `POST /` needs a bearer JWT; the verified `Identity` reaches the executor as
    the call context's user (`services.common.auth.IdentityUser`).
    """
    secret = settings.jwt_secret()
    card = build_agent_card(settings, service_name, skills, version)
    handler = DefaultRequestHandler(
        agent_executor=SkillsExecutor(service_name, skills),
        # NOTE: finished tasks stay in memory until the process exits, which
        # suits a demo stack but grows without bound on a long-running one.
        task_store=InMemoryTaskStore(),
        agent_card=card,
    )
    routes = [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(
            handler,
            rpc_url=RPC_PATH,
            context_builder=IdentityContextBuilder(),
            enable_v0_3_compat=True,
            shutdown_grace_period=STREAM_SHUTDOWN_GRACE,
        ),
        Route(HEALTH_PATH, health, methods=["GET"]),
    ]
    middleware = [
        Middleware(
            AuthenticationMiddleware,
            backend=BearerAuthBackend(secret, protected_paths={RPC_PATH}),
            on_error=reject_unauthenticated,
        ),
        Middleware(RequestLimitMiddleware, paths={RPC_PATH}),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await handler.aclose()

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.service_name = service_name
    return app
