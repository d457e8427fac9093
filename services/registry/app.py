"""The registry service: stores A2A agent cards and probes the agents' health.

Endpoints: `POST /agents` registers a card by URL, `GET /agents` lists the
records, `GET /agents/{name}` returns one, `DELETE /agents/{name}` removes one,
and `GET /health` reports liveness.

No endpoint requires a JWT, reads and registration included. The service binds
to loopback by default, so only local processes such as the CLI and the agents
can reach it. Setting JARVIS_BIND_HOST to another address opens registration
and removal to that network as well.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.common.settings import ConfigError, ServiceSettings
from services.registry.cards import (
    CardFetchError,
    InvalidCardError,
    describe_error,
    fetch_card,
    normalize_card_url,
    validate_card,
)
from services.registry.store import AgentRecord, AgentStore, open_store

# Often enough that `jarvisctl status` shows a dead agent within seconds, rare
# enough that three agents cost nothing.
DEFAULT_PROBE_SECONDS = 10.0
# A healthy local agent returns its card in milliseconds.
PROBE_TIMEOUT_SECONDS = 2.0
MAX_URL_LENGTH = 2048

logger = logging.getLogger(__name__)


class RegisterRequest(BaseModel):
    """Body of `POST /agents`: the agent card URL or the agent's base URL."""

    card_url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)


def probe_interval(env: dict[str, str]) -> float:
    """Read JARVIS_REGISTRY_PROBE_SECONDS, the pause between health probes."""
    raw = env.get("JARVIS_REGISTRY_PROBE_SECONDS") or ""
    if not raw:
        return DEFAULT_PROBE_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(
            f"invalid JARVIS_REGISTRY_PROBE_SECONDS: {raw!r}, expected a positive "
            "number of seconds"
        )
    return seconds


def build_app(settings: ServiceSettings) -> FastAPI:
    """Build the registry app, raising ConfigError if the database cannot be opened."""
    interval = probe_interval(settings.env)
    try:
        store = open_store(settings.run_dir)
    except (OSError, sqlite3.Error) as error:
        raise ConfigError(
            f"failed to open the registry database in {settings.run_dir}: {error}, "
            "check JARVIS_RUN_DIR and its permissions"
        ) from None
    logger.info("Opened %s, probing agents every %g s", store.path, interval)
    # httpx logs every request at INFO, which would repeat for each probe. The
    # probe logs only changes of an agent's health instead.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient() as client:
            app.state.client = client
            prober = asyncio.create_task(_probe_forever(store, client, interval))
            try:
                yield
            finally:
                prober.cancel()
                await asyncio.gather(prober, return_exceptions=True)
        store.close()

    app = FastAPI(
        title="jarvis registry", docs_url=None, redoc_url=None, lifespan=lifespan
    )
    _add_routes(app, store)
    return app


def _add_routes(app: FastAPI, store: AgentStore) -> None:
    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "registry"}

    @app.post("/agents", status_code=201)
    async def register(request: RegisterRequest) -> JSONResponse:
        record = await _fetch_record(app.state.client, request.card_url)
        created = await asyncio.to_thread(store.upsert, record)
        logger.info(
            "%s %s %s at %s",
            "Registered" if created else "Updated",
            record.name,
            record.version,
            record.url,
        )
        return JSONResponse(record.to_json(), status_code=201 if created else 200)

    @app.get("/agents")
    def list_agents() -> list[dict[str, Any]]:
        return [record.to_json() for record in store.list_agents()]

    @app.get("/agents/{name}")
    def get_agent(name: str) -> dict[str, Any]:
        record = store.get(name)
        if record is None:
            raise HTTPException(404, f"agent {name!r} is not registered")
        return record.to_json()

    @app.delete("/agents/{name}", status_code=204)
    def delete_agent(name: str) -> Response:
        if not store.delete(name):
            raise HTTPException(404, f"agent {name!r} is not registered")
        logger.info("Removed %s", name)
        return Response(status_code=204)


async def _fetch_record(client: httpx.AsyncClient, raw_url: str) -> AgentRecord:
    """Fetch and validate the card, raising HTTPException 400 or 502 with the reason."""
    try:
        card_url = normalize_card_url(raw_url)
        card = await fetch_card(client, card_url)
        summary = validate_card(card)
    except InvalidCardError as error:
        logger.warning("Rejected registration of %r: %s", raw_url, error)
        raise HTTPException(400, str(error)) from None
    except CardFetchError as error:
        logger.warning("Rejected registration of %r: %s", raw_url, error)
        raise HTTPException(502, str(error)) from None
    now = _utc_now()
    return AgentRecord(
        name=summary.name,
        version=summary.version,
        url=summary.url,
        card_url=card_url,
        card=card,
        registered_at=now,
        healthy=True,
        last_seen=now,
        last_checked=now,
    )


async def _probe_forever(
    store: AgentStore, client: httpx.AsyncClient, interval: float
) -> None:
    """Probe every registered agent, then sleep `interval` seconds, until cancelled."""
    while True:
        try:
            records = await asyncio.to_thread(store.list_agents)
        except sqlite3.Error as error:
            logger.error("Failed to list agents for probing: %s", error)
            records = []
        probes = [_probe(store, client, record) for record in records]
        results = await asyncio.gather(*probes, return_exceptions=True)
        for record, result in zip(records, results):
            if isinstance(result, Exception):
                logger.error("Failed to probe %s: %r", record.name, result)
        await asyncio.sleep(interval)


async def _probe(
    store: AgentStore, client: httpx.AsyncClient, record: AgentRecord
) -> None:
    reason = ""
    try:
        # Streamed so that only the status line is read, never the body.
        async with client.stream(
            "GET", record.card_url, timeout=PROBE_TIMEOUT_SECONDS
        ) as response:
            healthy = response.status_code == 200
            reason = f"HTTP {response.status_code}"
    except httpx.HTTPError as error:
        healthy = False
        reason = describe_error(error)
    if healthy != record.healthy:
        if healthy:
            logger.info("Marked %s healthy", record.name)
        else:
            logger.warning("Marked %s unhealthy: %s", record.name, reason)
    await asyncio.to_thread(
        store.record_probe, record.name, record.card_url, healthy, _utc_now()
    )


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
