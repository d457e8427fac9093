"""TicketsAgent over real A2A calls: skills, ownership, durability, faults."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable

import pytest
from conftest import (
    ROOT,
    Project,
    RunningService,
    agent_answer,
    agent_token,
    ask_agent,
)

from services.tickets.store import FIRST_TICKET_ID


@pytest.fixture
def tickets(services: Callable[..., RunningService]) -> RunningService:
    return services("tickets")


def ticket_id(data: dict) -> int:
    return int(data["records"][0]["id"])


def test_create_both_phrasings(tickets: RunningService, project: Project) -> None:
    token = agent_token(project, "vishal")

    text, data = agent_answer(tickets.url, token, "create VPN ticket")
    assert data["skill"] == "create_ticket"
    assert ticket_id(data) == FIRST_TICKET_ID
    assert data["records"][0]["category"] == "network"
    assert data["records"][0]["owner"] == "vishal"
    assert data["records"][0]["status"] == "open"
    assert data["columns"][0] == "id"
    assert set(data["columns"]) == set(data["records"][0])
    assert text == (
        f"Created ticket **{FIRST_TICKET_ID}**: VPN access "
        "(network, priority medium, status open)."
    )

    _, data = agent_answer(tickets.url, token, "I need a GitLab account")
    assert ticket_id(data) == FIRST_TICKET_ID + 1
    assert data["records"][0]["category"] == "access"
    assert data["records"][0]["title"] == "GitLab account"

    _, data = agent_answer(tickets.url, token, "open a ticket for a broken laptop")
    assert data["records"][0]["category"] == "hardware"
    assert data["records"][0]["title"] == "Broken laptop"
    log = tickets.log()
    assert "Answered tickets request from vishal with skill create_ticket in" in log
    assert token not in log


def test_list_show_update_close(tickets: RunningService, project: Project) -> None:
    token = agent_token(project, "vishal")
    agent_answer(tickets.url, token, "create VPN ticket")
    agent_answer(tickets.url, token, "request access to Jira")
    first, second = FIRST_TICKET_ID, FIRST_TICKET_ID + 1

    _, data = agent_answer(tickets.url, token, "show my tickets")
    assert data["skill"] == "list_tickets"
    assert [int(record["id"]) for record in data["records"]] == [first, second]

    text, data = agent_answer(tickets.url, token, f"status of {first}")
    assert data["skill"] == "show_ticket"
    assert f"Ticket **{first}**: VPN access" in text

    _, data = agent_answer(tickets.url, token, f"set ticket {first} to in progress")
    assert data["skill"] == "update_ticket"
    assert data["records"][0]["status"] == "in_progress"

    _, data = agent_answer(tickets.url, token, f"update {first} priority high")
    assert data["records"][0]["priority"] == "high"
    assert data["records"][0]["status"] == "in_progress"

    text, data = agent_answer(tickets.url, token, f"close ticket {first}")
    assert data["skill"] == "close_ticket"
    assert data["records"][0]["status"] == "closed"
    assert text.startswith(f"Closed ticket **{first}**")

    _, data = agent_answer(tickets.url, token, f"resolve {second}")
    assert data["records"][0]["status"] == "resolved"

    _, data = agent_answer(tickets.url, token, "list my open tickets")
    assert data["records"] == []


def test_users_see_only_own_tickets(tickets: RunningService, project: Project) -> None:
    vishal = agent_token(project, "vishal")
    happy = agent_token(project, "happy", "devops")
    admin = agent_token(project, "admin", "admin")
    agent_answer(tickets.url, vishal, "create VPN ticket")
    _, data = agent_answer(tickets.url, happy, "open a ticket for a broken laptop")
    happy_ticket = ticket_id(data)

    text, data = agent_answer(tickets.url, vishal, f"show ticket {happy_ticket}")
    assert text == f"Ticket {happy_ticket} not found."
    assert data["records"] == []

    text, _ = agent_answer(tickets.url, vishal, f"close ticket {happy_ticket}")
    assert text == f"Ticket {happy_ticket} not found."

    _, data = agent_answer(tickets.url, vishal, "show my tickets")
    assert [record["owner"] for record in data["records"]] == ["vishal"]

    _, data = agent_answer(tickets.url, happy, f"show ticket {happy_ticket}")
    assert data["records"][0]["status"] == "open"

    _, data = agent_answer(tickets.url, admin, "show all tickets")
    assert [record["owner"] for record in data["records"]] == ["vishal", "happy"]

    _, data = agent_answer(tickets.url, admin, f"close ticket {happy_ticket}")
    assert data["records"][0]["status"] == "closed"


def test_unknown_id_reads_as_not_found(
    tickets: RunningService, project: Project
) -> None:
    token = agent_token(project, "vishal")

    text, data = agent_answer(tickets.url, token, "show ticket 99999")

    assert text == "Ticket 99999 not found."
    assert data["records"] == []


def test_ticket_survives_kill_9(
    services: Callable[..., RunningService], project: Project
) -> None:
    token = agent_token(project, "vishal")
    first = services("tickets")
    _, data = agent_answer(first.url, token, "create VPN ticket")
    created = ticket_id(data)

    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=10)
    second = services("tickets")
    _, data = agent_answer(second.url, token, f"show ticket {created}")

    assert ticket_id(data) == created
    assert data["records"][0]["title"] == "VPN access"


def test_unmappable_request_returns_help(
    tickets: RunningService, project: Project
) -> None:
    token = agent_token(project, "vishal")

    text, data = agent_answer(tickets.url, token, "what is the weather in Pune")

    assert data["skill"] == "help"
    assert text.startswith("I could not map that request to a ticket skill.")
    assert '"create VPN ticket"' in text
    assert '"close ticket 12301"' in text


def test_store_failure_fails_task(tickets: RunningService, project: Project) -> None:
    token = agent_token(project, "vishal")
    database = project.directory / ".jarvis" / "tickets.db"
    agent_answer(tickets.url, token, "create VPN ticket")
    # A directory where the database file was makes every connection fail.
    for path in database.parent.glob("tickets.db*"):
        path.unlink()
    database.mkdir()

    headers = {"Authorization": f"Bearer {token}"}
    reply = ask_agent(tickets.url, "show my tickets", headers)
    status = reply["result"]["task"]["status"]

    assert status["state"] == "TASK_STATE_FAILED"
    reason = status["message"]["parts"][0]["text"]
    assert reason == "internal error in TicketsAgent, see the agent log"
    assert "Traceback" not in str(reply)
    assert "Failed to answer tickets request from vishal" in tickets.log()
    shutil.rmtree(database)


def test_bad_run_dir_exits_3(project: Project) -> None:
    blocker = project.directory / "not-a-directory"
    blocker.write_text("")
    env = project.process_env(JARVIS_RUN_DIR=str(blocker / "run"))

    result = subprocess.run(
        [sys.executable, "-m", "services.tickets"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 3
    assert "failed to open the tickets database" in result.stderr
    assert "Traceback" not in result.stderr
