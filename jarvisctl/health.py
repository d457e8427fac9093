"""HTTP readiness probes and agent card summaries for the stack's services.

Probes use one shared httpx client without keep-alive and without proxy
settings from the environment, so a probe always opens a fresh loopback
connection and a restarted service is never probed over a stale socket.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import httpx

# Short enough that one hung service cannot hold up a round of probes.
PROBE_TIMEOUT = 1.0
CARD_PATH = "/.well-known/agent-card.json"
# Longest error text kept in a result, so state.json stays small.
MAX_ERROR_CHARS = 200

logger = logging.getLogger(__name__)

_client: httpx.Client | None = None
_client_lock = threading.Lock()


@dataclass
class HealthResult:
    """Outcome of one readiness probe."""

    ok: bool
    status: int | None
    latency_ms: float | None
    checked_at: float
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HealthResult:
        return cls(
            ok=bool(data["ok"]),
            status=data.get("status"),
            latency_ms=data.get("latency_ms"),
            checked_at=float(data.get("checked_at") or 0.0),
            error=data.get("error"),
        )


@dataclass
class CardSummary:
    """Name, version and skill count of an agent card."""

    name: str
    version: str
    skills: int
    url: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CardSummary:
        return cls(
            name=str(data["name"]),
            version=str(data.get("version") or ""),
            skills=int(data.get("skills") or 0),
            url=str(data.get("url") or ""),
        )


def shared_client() -> httpx.Client:
    """Return the process-wide probe client, created on first use."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(
                trust_env=False,
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return _client


def probe(url: str, timeout: float = PROBE_TIMEOUT) -> HealthResult:
    """GET `url` and report whether it returned HTTP 200, with the latency."""
    started = time.perf_counter()
    checked_at = time.time()
    try:
        response = shared_client().get(url, timeout=timeout)
    except httpx.HTTPError as error:
        message = f"{type(error).__name__}: {error}".rstrip(": ")
        return HealthResult(False, None, None, checked_at, message[:MAX_ERROR_CHARS])
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    ok = response.status_code == 200
    error = None if ok else f"HTTP {response.status_code}"
    return HealthResult(ok, response.status_code, latency_ms, checked_at, error)


def probe_many(
    urls: dict[str, str], timeout: float = PROBE_TIMEOUT
) -> dict[str, HealthResult]:
    """Probe every URL concurrently; return the results under the same keys."""
    if not urls:
        return {}
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        futures = {key: pool.submit(probe, url, timeout) for key, url in urls.items()}
        return {key: future.result() for key, future in futures.items()}


def fetch_card(base_url: str, timeout: float = PROBE_TIMEOUT) -> CardSummary | None:
    """Fetch the agent card of `base_url`; None when it is missing or invalid."""
    url = base_url.rstrip("/") + CARD_PATH
    try:
        response = shared_client().get(url, timeout=timeout)
        response.raise_for_status()
        card = response.json()
    except (httpx.HTTPError, ValueError) as error:
        logger.debug("Failed to fetch agent card %s: %s", url, error)
        return None
    if not isinstance(card, dict) or not isinstance(card.get("name"), str):
        logger.debug("Ignored agent card %s without a name", url)
        return None
    skills = card.get("skills")
    return CardSummary(
        name=card["name"],
        version=str(card.get("version") or ""),
        skills=len(skills) if isinstance(skills, list) else 0,
        url=str(card.get("url") or base_url),
    )
