"""Fetch and validate A2A agent cards.

Both card layouts are accepted: a2a 1.x cards list their endpoints in
`supportedInterfaces` (`url`, `protocolBinding`, `protocolVersion`), while
0.3 cards carry one top-level `url`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

WELL_KNOWN_PATH = "/.well-known/agent-card.json"
# A card is a small JSON document, so a slow or huge response means a broken agent.
FETCH_TIMEOUT_SECONDS = 5.0
MAX_CARD_BYTES = 1_000_000
# The name becomes a path segment of `/agents/{name}`.
MAX_NAME_LENGTH = 128
PREFERRED_BINDING = "JSONRPC"


class InvalidCardError(Exception):
    """The card URL or the card itself is invalid (the caller's mistake)."""


class CardFetchError(Exception):
    """The card could not be fetched: unreachable, non-200 or not JSON."""


@dataclass(frozen=True)
class CardSummary:
    """The fields of a card the registry indexes."""

    name: str
    version: str
    url: str


def normalize_card_url(raw: str) -> str:
    """Return the card URL for `raw`, appending the well-known path to a base URL.

    Raise InvalidCardError unless `raw` is an http or https URL with a host.
    NOTE: any host is accepted, so whoever can reach the registry can make it
    send GET requests to hosts on its network.
    """
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https"):
        raise InvalidCardError(
            f"invalid card_url {raw!r}: expected an http:// or https:// URL"
        )
    if not parts.hostname:
        raise InvalidCardError(f"invalid card_url {raw!r}: the URL has no host")
    path = parts.path
    if not path.endswith(".json"):
        path = path.rstrip("/") + WELL_KNOWN_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


async def fetch_card(client: httpx.AsyncClient, card_url: str) -> dict[str, Any]:
    """Fetch the card JSON, raising CardFetchError unless it is a JSON object."""
    try:
        async with client.stream(
            "GET", card_url, timeout=FETCH_TIMEOUT_SECONDS
        ) as response:
            if response.status_code != 200:
                raise CardFetchError(
                    f"fetching {card_url} failed: HTTP {response.status_code}"
                )
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > MAX_CARD_BYTES:
                    raise CardFetchError(
                        f"fetching {card_url} failed: card larger than "
                        f"{MAX_CARD_BYTES} bytes"
                    )
    except httpx.TimeoutException:
        raise CardFetchError(
            f"fetching {card_url} timed out after {FETCH_TIMEOUT_SECONDS:g} s"
        ) from None
    except httpx.HTTPError as error:
        raise CardFetchError(
            f"fetching {card_url} failed: {describe_error(error)}"
        ) from None
    try:
        card = json.loads(bytes(body))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CardFetchError(f"fetching {card_url} failed: body is not JSON") from None
    if not isinstance(card, dict):
        raise CardFetchError(f"fetching {card_url} failed: JSON is not an object")
    return card


def validate_card(card: dict[str, Any]) -> CardSummary:
    """Check the fields the registry needs, raising InvalidCardError at a gap."""
    name = _required_text(card, "name")
    if len(name) > MAX_NAME_LENGTH or "/" in name or not name.isprintable():
        raise InvalidCardError(
            f"invalid card: name {name[:MAX_NAME_LENGTH]!r} must be printable, "
            f"without '/', and at most {MAX_NAME_LENGTH} characters"
        )
    version = _required_text(card, "version")
    skills = card.get("skills")
    if not isinstance(skills, list) or not skills:
        raise InvalidCardError("invalid card: it lists no skills")
    for index, skill in enumerate(skills):
        if not isinstance(skill, dict):
            raise InvalidCardError(f"invalid card: skills[{index}] is not an object")
        _required_text(skill, "id", f"skills[{index}].")
        _required_text(skill, "name", f"skills[{index}].")
    return CardSummary(name=name, version=version, url=interface_url(card))


def interface_url(card: dict[str, Any]) -> str:
    """Return the agent's JSON-RPC endpoint (or its first endpoint) from the card."""
    interfaces = card.get("supportedInterfaces")
    candidates: list[str] = []
    if isinstance(interfaces, list):
        usable = [item for item in interfaces if isinstance(item, dict)]
        preferred = [
            item for item in usable if item.get("protocolBinding") == PREFERRED_BINDING
        ]
        candidates = [item.get("url") for item in preferred + usable]
    candidates.append(card.get("url"))
    for url in candidates:
        if isinstance(url, str) and urlsplit(url).scheme in ("http", "https"):
            return url
    raise InvalidCardError(
        "invalid card: no http(s) URL in supportedInterfaces or in url"
    )


def _required_text(card: dict[str, Any], field: str, prefix: str = "") -> str:
    value = card.get(field)
    if not isinstance(value, str) or not value.strip():
        raise InvalidCardError(f"invalid card: {prefix}{field} is missing or empty")
    return value.strip()


def describe_error(error: Exception) -> str:
    """Return the error's message, or its class name when the message is empty."""
    return str(error) or type(error).__name__
