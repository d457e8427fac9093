"""HTTP readiness probes and agent card summaries for the stack's services.

Requests go through the standard library's http.client, one connection per
request and no proxy, so a restarted service is never probed over a stale
socket. httpx 0.29 is not used here because importing it also imports rich,
click and pygments (about 20 MB of memory in a supervisor that stays idle).
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

# Short enough that one hung service cannot hold up a round of probes.
PROBE_TIMEOUT = 1.0
CARD_PATH = "/.well-known/agent-card.json"
# Maximum length of the error text kept in a result, so state.json stays small.
MAX_ERROR_CHARS = 200
# Maximum response body read; agent cards and health replies are far smaller.
MAX_BODY_BYTES = 1024 * 1024

logger = logging.getLogger(__name__)


class HTTPRequestError(Exception):
    """An HTTP request failed before a response arrived."""


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


def request(
    method: str, url: str, timeout: float, body: dict[str, Any] | None = None
) -> tuple[int, bytes]:
    """Send one HTTP request and return the status code and body.

    `timeout` bounds the connect and each socket read, not the whole request.
    Raises HTTPRequestError on connection errors, timeouts and invalid replies.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HTTPRequestError(f"invalid URL {url!r}: expected http://host:port/path")
    connection_class = (
        http.client.HTTPSConnection
        if parts.scheme == "https"
        else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    headers = {"Connection": "close", "Accept": "application/json"}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(MAX_BODY_BYTES)
    except TimeoutError:
        raise HTTPRequestError(f"timed out after {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as error:
        message = f"{type(error).__name__}: {error}".rstrip(": ")
        raise HTTPRequestError(message) from None
    finally:
        connection.close()


def probe(url: str, timeout: float = PROBE_TIMEOUT) -> HealthResult:
    """GET `url` and report whether it returned HTTP 200, with the latency."""
    started = time.perf_counter()
    checked_at = time.time()
    try:
        status, _body = request("GET", url, timeout)
    except HTTPRequestError as error:
        return HealthResult(False, None, None, checked_at, str(error)[:MAX_ERROR_CHARS])
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    ok = status == 200
    error = None if ok else f"HTTP {status}"
    return HealthResult(ok, status, latency_ms, checked_at, error)


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
        status, body = request("GET", url, timeout)
        card = json.loads(body) if status == 200 else None
    except (HTTPRequestError, ValueError) as error:
        logger.debug("Failed to fetch agent card %s: %s", url, error)
        return None
    if not isinstance(card, dict) or not isinstance(card.get("name"), str):
        logger.debug("Ignored agent card %s: HTTP %s or no name", url, status)
        return None
    skills = card.get("skills")
    return CardSummary(
        name=card["name"],
        version=str(card.get("version") or ""),
        skills=len(skills) if isinstance(skills, list) else 0,
        url=str(card.get("url") or base_url),
    )
