"""A minimal A2A agent that replies to every message with the same text.

It is the floor for the throughput benchmark: the a2a-sdk 1.3 route factories,
`DefaultRequestHandler` and `InMemoryTaskStore` that `services.common.agent`
uses, and the same task events (submitted, working, one text artifact,
completed), but no authentication, no body checks and no domain logic.

Run: .venv/bin/python bench/minimal_agent.py --port 18123
"""

from __future__ import annotations

import argparse
import logging

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from a2a.helpers.proto_helpers import new_task, new_text_part
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
    TaskState,
)
from a2a.utils.constants import PROTOCOL_VERSION_0_3, PROTOCOL_VERSION_1_0

ANSWER_TEXT = "Nothing to report."
HOST = "127.0.0.1"

logger = logging.getLogger(__name__)


class FixedTextExecutor(AgentExecutor):
    """Executor that completes every task with one fixed text artifact."""

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
        await updater.add_artifact([new_text_part(ANSWER_TEXT)], name="answer")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id = context.task_id or ""
        updater = TaskUpdater(event_queue, task_id, context.context_id or "")
        await updater.cancel()


def build_card(port: int) -> AgentCard:
    """Describe the agent with one skill and JSON-RPC on A2A 1.0 and 0.3."""
    url = f"http://{HOST}:{port}/"
    return AgentCard(
        name="MinimalAgent",
        description="Replies to every message with a fixed text.",
        version="0.0.1",
        supported_interfaces=[
            AgentInterface(
                url=url, protocol_binding="JSONRPC", protocol_version=version
            )
            for version in (PROTOCOL_VERSION_1_0, PROTOCOL_VERSION_0_3)
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id="fixed",
                name="Fixed answer",
                description="Returns the same text for any message.",
                tags=["bench"],
                examples=["anything"],
            )
        ],
    )


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "service": "minimal"})


def build_app(port: int) -> Starlette:
    card = build_card(port)
    handler = DefaultRequestHandler(
        agent_executor=FixedTextExecutor(),
        task_store=InMemoryTaskStore(),
        agent_card=card,
    )
    routes = [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(handler, rpc_url="/", enable_v0_3_compat=True),
        Route("/health", health, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port to bind.")
    args = parser.parse_args()
    # Same uvicorn options as services.common.server.serve, for a fair floor.
    uvicorn.run(
        build_app(args.port),
        host=HOST,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
