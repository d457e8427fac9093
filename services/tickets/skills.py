"""TicketsAgent's skills: create, list, show, update and close helpdesk tickets.

A user sees and changes only their own tickets; an admin sees and changes all.
Another user's ticket is reported exactly like a missing one, so ids do not
reveal which tickets exist.
"""

from __future__ import annotations

import logging

from services.common.answers import Answer, SkillInfo
from services.common.tokens import Identity
from services.tickets.intents import TicketRequest, parse_request
from services.tickets.store import Ticket, TicketStore

CATALOG = [
    SkillInfo(
        id="create_ticket",
        name="Create ticket",
        description="Open a helpdesk ticket; the category and title come from "
        "the request (network, access, hardware, software, other).",
        tags=["tickets", "create", "helpdesk"],
        examples=[
            "create VPN ticket",
            "I need a GitLab account",
            "open a ticket for a broken laptop",
            "request access to Jira",
        ],
    ),
    SkillInfo(
        id="list_tickets",
        name="List my tickets",
        description="List your tickets, optionally only open or closed ones; "
        "an admin sees every user's tickets.",
        tags=["tickets", "list"],
        examples=["show my tickets", "list my open tickets"],
    ),
    SkillInfo(
        id="show_ticket",
        name="Show ticket",
        description="Show one ticket with its status, priority and description.",
        tags=["tickets", "status"],
        examples=["show ticket 12301", "status of 12301"],
    ),
    SkillInfo(
        id="update_ticket",
        name="Update ticket",
        description="Change a ticket's status (open, in progress, resolved, "
        "closed) or priority (low, medium, high, critical).",
        tags=["tickets", "update"],
        examples=["set ticket 12301 to in progress", "update 12301 priority high"],
    ),
    SkillInfo(
        id="close_ticket",
        name="Close ticket",
        description="Close or resolve a ticket.",
        tags=["tickets", "close"],
        examples=["close ticket 12301", "resolve 12301"],
    ),
]

logger = logging.getLogger(__name__)


class TicketsSkills:
    """The tickets domain behind TicketsAgent."""

    name = "TicketsAgent"
    description = (
        "IT helpdesk tickets in plain English: create, list, show, update and "
        "close your tickets."
    )
    catalog = CATALOG
    # `answer` reads or writes SQLite on every call.
    blocking = True

    def __init__(self, store: TicketStore) -> None:
        self._store = store

    def answer(self, text: str, identity: Identity) -> Answer:
        request = parse_request(text)
        match request.skill:
            case "create_ticket":
                return self.create_ticket(request, identity, text)
            case "list_tickets":
                return self.list_tickets(request, identity)
            case "show_ticket":
                return self.show_ticket(request, identity)
            case "update_ticket" | "close_ticket":
                return self.change_ticket(request, identity)
        return help_answer(explicit=request.explicit_help)

    def create_ticket(
        self, request: TicketRequest, identity: Identity, text: str
    ) -> Answer:
        ticket = self._store.create(
            owner=identity.username,
            title=request.title,
            category=request.category,
            priority=request.priority or "medium",
            description=text.strip(),
        )
        logger.info("Created ticket %d for %s", ticket.id, identity.username)
        text = (
            f"Created ticket **{ticket.id}**: {ticket.title} ({ticket.category}, "
            f"priority {ticket.priority}, status {ticket.status})."
        )
        return Answer("create_ticket", text, [ticket.as_record()])

    def list_tickets(self, request: TicketRequest, identity: Identity) -> Answer:
        everyone = identity.is_admin and request.scope_all
        owner = None if everyone else identity.username
        tickets = self._store.list(owner=owner, statuses=request.statuses)
        whose = "All" if everyone else "Your"
        which = " or ".join(status.replace("_", " ") for status in request.statuses)
        if request.statuses == ("open", "in_progress"):
            which = "open"
        label = f"{whose} {which} tickets" if which else f"{whose} tickets"
        if not tickets:
            text = f"{label}: none. Create one with \"create VPN ticket\"."
        else:
            text = f"{label} ({len(tickets)}):\n\n" + ticket_table(tickets, everyone)
        return Answer("list_tickets", text, [ticket.as_record() for ticket in tickets])

    def show_ticket(self, request: TicketRequest, identity: Identity) -> Answer:
        ticket = self._visible_ticket(request.ticket_id, identity)
        if ticket is None:
            return not_found("show_ticket", request.ticket_id)
        lines = [
            f"Ticket **{ticket.id}**: {ticket.title}",
            "",
            f"- owner: {ticket.owner}",
            f"- category: {ticket.category}",
            f"- status: {ticket.status.replace('_', ' ')}",
            f"- priority: {ticket.priority}",
            f"- created: {ticket.created_at}",
            f"- updated: {ticket.updated_at}",
            f"- description: {ticket.description}",
        ]
        return Answer("show_ticket", "\n".join(lines), [ticket.as_record()])

    def change_ticket(self, request: TicketRequest, identity: Identity) -> Answer:
        ticket = self._visible_ticket(request.ticket_id, identity)
        if ticket is None:
            return not_found(request.skill, request.ticket_id)
        if request.status is None and request.priority is None:
            text = (
                f"Nothing to change in ticket {ticket.id}: name a status (open, in "
                "progress, resolved, closed) or a priority (low, medium, high, "
                f'critical), for example "set ticket {ticket.id} to in progress".'
            )
            return Answer(request.skill, text, [ticket.as_record()])
        unchanged_priority = request.priority in (None, ticket.priority)
        if request.status == ticket.status and unchanged_priority:
            status = ticket.status.replace("_", " ")
            text = f"Ticket **{ticket.id}** is already {status}."
            return Answer(request.skill, text, [ticket.as_record()])

        updated = self._store.update(ticket.id, request.status, request.priority)
        logger.info(
            "Updated ticket %d for %s: status %s, priority %s",
            updated.id,
            identity.username,
            updated.status,
            updated.priority,
        )
        verb = "Updated"
        if request.skill == "close_ticket":
            verb = "Closed" if updated.status == "closed" else "Resolved"
        text = (
            f"{verb} ticket **{updated.id}**: {updated.title} (status "
            f"{updated.status.replace('_', ' ')}, priority {updated.priority})."
        )
        return Answer(request.skill, text, [updated.as_record()])

    def _visible_ticket(
        self, ticket_id: int | None, identity: Identity
    ) -> Ticket | None:
        if ticket_id is None:
            return None
        ticket = self._store.get(ticket_id)
        if ticket is None:
            return None
        if ticket.owner != identity.username and not identity.is_admin:
            return None
        return ticket


def ticket_table(tickets: list[Ticket], with_owner: bool) -> str:
    header = ["id", "title", "category", "status", "priority"]
    if with_owner:
        header.insert(1, "owner")
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for ticket in tickets:
        cells = [
            str(ticket.id),
            ticket.title.replace("|", "/"),
            ticket.category,
            ticket.status.replace("_", " "),
            ticket.priority,
        ]
        if with_owner:
            cells.insert(1, ticket.owner)
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def not_found(skill: str, ticket_id: int | None) -> Answer:
    return Answer(skill, f"Ticket {ticket_id} not found.", [])


def help_answer(explicit: bool) -> Answer:
    lines = ["I manage IT helpdesk tickets. Ask me, for example:", ""]
    if not explicit:
        lines.insert(0, "I could not map that request to a ticket skill.")
    for info in CATALOG:
        examples = ", ".join(f'"{example}"' for example in info.examples)
        lines.append(f"- **{info.name}**: {examples}")
    return Answer("help", "\n".join(lines), [])
