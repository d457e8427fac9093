"""Tests of the registry service against agent cards served by a local server."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from conftest import ROOT, Project, RunningService, free_port, make_project

CARD_PATH = "/.well-known/agent-card.json"
# Short, so that the health tests get a probe result within a second or two.
TEST_PROBE_SECONDS = "0.3"
# Upper bound for waiting on a probe result, far above the probe interval.
PROBE_WAIT_SECONDS = 15.0


def make_card(name: str = "TicketsAgent", **overrides: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        "name": name,
        "description": "IT operations tickets",
        "version": "1.2.0",
        "supportedInterfaces": [
            {
                "url": "http://127.0.0.1:8080/",
                "protocolBinding": "JSONRPC",
                "protocolVersion": "1.0",
            }
        ],
        "capabilities": {"streaming": False},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [
            {
                "id": "list_tickets",
                "name": "List tickets",
                "description": "Lists open tickets",
                "tags": ["tickets"],
            }
        ],
    }
    card.update(overrides)
    return card


@dataclass
class CardServer:
    """A local HTTP server that returns fixed bodies per path."""

    server: ThreadingHTTPServer
    routes: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def serve_card(self, card: dict[str, Any], path: str = CARD_PATH) -> str:
        self.routes[path] = (200, json.dumps(card).encode())
        return self.base_url + path

    def serve_raw(self, path: str, status: int, body: bytes) -> str:
        self.routes[path] = (status, body)
        return self.base_url + path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_card_server() -> CardServer:
    routes: dict[str, tuple[int, bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = routes.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return CardServer(server, routes)


@pytest.fixture
def cards() -> Iterator[CardServer]:
    server = start_card_server()
    yield server
    server.stop()


@pytest.fixture
def registry(services: Callable[..., RunningService]) -> RunningService:
    return services("registry", JARVIS_REGISTRY_PROBE_SECONDS=TEST_PROBE_SECONDS)


@pytest.fixture(scope="module")
def rejecting_registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningService]:
    """One registry shared by the tests of rejected registrations.

    Those tests store nothing, so sharing saves a service start per case.
    """
    project = make_project(tmp_path_factory.mktemp("registry"))
    running = project.start("registry")
    yield running
    running.stop()


def register(registry: RunningService, card_url: str) -> httpx.Response:
    return httpx.post(f"{registry.url}/agents", json={"card_url": card_url}, timeout=15)


def get_agent(registry: RunningService, name: str) -> httpx.Response:
    return httpx.get(f"{registry.url}/agents/{name}", timeout=10)


def test_health_reports_registry(registry: RunningService) -> None:
    response = httpx.get(f"{registry.url}/health", timeout=5)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "registry"}


def test_register_stores_card(registry: RunningService, cards: CardServer) -> None:
    card_url = cards.serve_card(make_card())

    response = register(registry, card_url)
    record = response.json()

    assert response.status_code == 201
    assert record["name"] == "TicketsAgent"
    assert record["version"] == "1.2.0"
    assert record["url"] == "http://127.0.0.1:8080/"
    assert record["card_url"] == card_url
    assert record["card"] == make_card()
    assert record["healthy"] is True
    assert record["registered_at"] == record["last_seen"]


def test_register_accepts_base_url(registry: RunningService, cards: CardServer) -> None:
    card_url = cards.serve_card(make_card())

    response = register(registry, cards.base_url + "/")

    assert response.status_code == 201
    assert response.json()["card_url"] == card_url


def test_register_accepts_v03_card(registry: RunningService, cards: CardServer) -> None:
    card = make_card("FinOpsAgent", url="http://127.0.0.1:8081/")
    del card["supportedInterfaces"]

    response = register(registry, cards.serve_card(card))

    assert response.status_code == 201
    assert response.json()["url"] == "http://127.0.0.1:8081/"


def test_register_prefers_jsonrpc_interface(
    registry: RunningService, cards: CardServer
) -> None:
    interfaces = [
        {"url": "http://127.0.0.1:9/grpc", "protocolBinding": "GRPC"},
        {"url": "http://127.0.0.1:9/rpc", "protocolBinding": "JSONRPC"},
    ]
    card = make_card(supportedInterfaces=interfaces)

    response = register(registry, cards.serve_card(card))

    assert response.status_code == 201
    assert response.json()["url"] == "http://127.0.0.1:9/rpc"


def test_register_again_updates(registry: RunningService, cards: CardServer) -> None:
    card_url = cards.serve_card(make_card())
    assert register(registry, card_url).status_code == 201
    cards.serve_card(make_card(version="2.0.0"))

    response = register(registry, card_url)
    listing = httpx.get(f"{registry.url}/agents", timeout=10).json()

    assert response.status_code == 200
    assert response.json()["version"] == "2.0.0"
    assert [record["version"] for record in listing] == ["2.0.0"]


def test_list_and_get_agents(registry: RunningService, cards: CardServer) -> None:
    register(registry, cards.serve_card(make_card("TicketsAgent"), "/a.json"))
    register(registry, cards.serve_card(make_card("OxygenAgent"), "/b.json"))

    listing = httpx.get(f"{registry.url}/agents", timeout=10)
    found = get_agent(registry, "OxygenAgent")
    missing = get_agent(registry, "NoSuchAgent")

    assert listing.status_code == 200
    assert [record["name"] for record in listing.json()] == [
        "OxygenAgent",
        "TicketsAgent",
    ]
    assert found.status_code == 200
    assert found.json()["card_url"] == cards.base_url + "/b.json"
    assert missing.status_code == 404
    assert missing.json() == {"detail": "agent 'NoSuchAgent' is not registered"}


def test_delete_agent(registry: RunningService, cards: CardServer) -> None:
    register(registry, cards.serve_card(make_card()))

    deleted = httpx.delete(f"{registry.url}/agents/TicketsAgent", timeout=10)
    again = httpx.delete(f"{registry.url}/agents/TicketsAgent", timeout=10)

    assert deleted.status_code == 204
    assert get_agent(registry, "TicketsAgent").status_code == 404
    assert again.status_code == 404


def invalid_cards() -> dict[str, tuple[dict[str, Any], str]]:
    """Return cards missing one required part, with the reason the registry gives."""
    no_interface = make_card()
    del no_interface["supportedInterfaces"]
    return {
        "no_name": (make_card(name=""), "invalid card: name is missing or empty"),
        "no_version": (make_card(version=None), "invalid card: version is missing"),
        "no_skills": (make_card(skills=[]), "invalid card: it lists no skills"),
        "skill_without_id": (
            make_card(skills=[{"name": "x"}]),
            "invalid card: skills[0].id is missing",
        ),
        "no_interface": (no_interface, "invalid card: no http(s) URL"),
        "ftp_interface": (
            make_card(supportedInterfaces=[{"url": "ftp://127.0.0.1/x"}]),
            "invalid card: no http(s) URL",
        ),
        "slash_in_name": (make_card(name="a/b"), "must be printable, without '/'"),
    }


@pytest.mark.parametrize("case", sorted(invalid_cards()))
def test_register_rejects_invalid_card(
    rejecting_registry: RunningService, cards: CardServer, case: str
) -> None:
    card, reason = invalid_cards()[case]

    response = register(rejecting_registry, cards.serve_card(card))

    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert httpx.get(f"{rejecting_registry.url}/agents", timeout=10).json() == []


@pytest.mark.parametrize(
    ("card_url", "reason"),
    [
        ("ftp://127.0.0.1/card.json", "expected an http:// or https:// URL"),
        ("file:///etc/passwd", "expected an http:// or https:// URL"),
        ("http:///card.json", "the URL has no host"),
    ],
)
def test_register_rejects_bad_url(
    rejecting_registry: RunningService, card_url: str, reason: str
) -> None:
    response = register(rejecting_registry, card_url)

    assert response.status_code == 400
    assert reason in response.json()["detail"]


def test_register_unreachable_502(rejecting_registry: RunningService) -> None:
    card_url = f"http://127.0.0.1:{free_port()}{CARD_PATH}"

    response = register(rejecting_registry, card_url)

    assert response.status_code == 502
    assert response.json()["detail"].startswith(f"fetching {card_url} failed")


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b"{}", "failed: HTTP 500"),
        (200, b"<html>card</html>", "failed: body is not JSON"),
        (200, b"[1, 2]", "failed: JSON is not an object"),
    ],
)
def test_register_bad_response_502(
    rejecting_registry: RunningService,
    cards: CardServer,
    status: int,
    body: bytes,
    reason: str,
) -> None:
    card_url = cards.serve_raw(CARD_PATH, status, body)

    response = register(rejecting_registry, card_url)

    assert response.status_code == 502
    assert reason in response.json()["detail"]


def test_register_missing_card_502(
    rejecting_registry: RunningService, cards: CardServer
) -> None:
    response = register(rejecting_registry, cards.base_url + "/nothing-here.json")

    assert response.status_code == 502
    assert "failed: HTTP 404" in response.json()["detail"]


def test_register_malformed_body_422(rejecting_registry: RunningService) -> None:
    url = f"{rejecting_registry.url}/agents"

    response = httpx.post(url, json={"url": "x"}, timeout=10)

    assert response.status_code == 422


def test_records_survive_restart(
    project: Project,
    services: Callable[..., RunningService],
    cards: CardServer,
) -> None:
    first = services("registry")
    register(first, cards.serve_card(make_card()))
    first.stop()

    second = services("registry")
    response = get_agent(second, "TicketsAgent")
    database = project.directory / ".jarvis" / "registry.db"
    with sqlite3.connect(database) as connection:
        journal_mode = connection.execute("PRAGMA journal_mode").fetchone()[0]

    assert response.status_code == 200
    assert response.json()["version"] == "1.2.0"
    assert journal_mode == "wal"


def wait_for_health(
    registry: RunningService, name: str, healthy: bool
) -> dict[str, Any]:
    """Poll the record until its health flag equals `healthy` or time runs out."""
    deadline = time.monotonic() + PROBE_WAIT_SECONDS
    record = get_agent(registry, name).json()
    while record["healthy"] is not healthy and time.monotonic() < deadline:
        time.sleep(0.2)
        record = get_agent(registry, name).json()
    return record


def test_probe_marks_stopped_agent_unhealthy(
    registry: RunningService, cards: CardServer
) -> None:
    registered = register(registry, cards.serve_card(make_card())).json()
    cards.stop()

    record = wait_for_health(registry, "TicketsAgent", healthy=False)

    assert record["healthy"] is False
    assert record["last_seen"] is not None
    assert record["last_checked"] >= registered["last_checked"]
    assert "Marked TicketsAgent unhealthy" in registry.log()


def test_probe_marks_agent_healthy_again(
    registry: RunningService, cards: CardServer
) -> None:
    card_url = cards.serve_card(make_card())
    register(registry, card_url)
    cards.serve_raw(CARD_PATH, 503, b"{}")
    assert wait_for_health(registry, "TicketsAgent", healthy=False)["healthy"] is False

    cards.serve_card(make_card())
    record = wait_for_health(registry, "TicketsAgent", healthy=True)

    assert record["healthy"] is True
    assert "Marked TicketsAgent healthy" in registry.log()


def test_startup_fails_with_bad_probe_interval(project: Project) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.registry"],
        cwd=ROOT,
        env=project.process_env(JARVIS_REGISTRY_PROBE_SECONDS="often"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 3
    assert "invalid JARVIS_REGISTRY_PROBE_SECONDS: 'often'" in result.stderr
    assert "Traceback" not in result.stderr
