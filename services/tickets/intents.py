"""Map a plain-English ticket request to a skill call with keyword rules.

The rules are deterministic regular expressions, so the same sentence always
maps to the same skill. Examples of each form are in `TicketsSkills.catalog`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Ticket ids have at least four digits, so "2 monitors" is never read as an id.
TICKET_ID = re.compile(r"(?:\bticket\s*#?\s*|#|\b)(\d{4,})\b", re.IGNORECASE)
ID_AFTER_TICKET = re.compile(r"\bticket\s*#?\s*\d{4,}\b", re.IGNORECASE)

HELP = re.compile(r"^\W*(help|usage|commands|what can you do)\W*$", re.IGNORECASE)
LIST = re.compile(
    r"\b(show|list|view|display|see|get|what are)\b.*\btickets\b"
    r"|\bmy\s+(\w+\s+)?tickets\b|^\W*tickets\W*$",
    re.IGNORECASE,
)
ALL_TICKETS = re.compile(r"\b(all|every(one)?|everybody)\b", re.IGNORECASE)
MINE = re.compile(r"\b(my|mine)\b", re.IGNORECASE)
CREATE_VERB = re.compile(
    r"\b(create|open|raise|file|submit|log|make|new)\b(\s+\S+){0,4}?\s+ticket\b",
    re.IGNORECASE,
)
REQUEST = re.compile(
    r"\b(i\s+need|i\s+want|i'?d\s+like|we\s+need|need|request(ing)?|get\s+me"
    r"|give\s+me|grant\s+me|please\s+(provide|set\s+up|install))\b",
    re.IGNORECASE,
)
PROBLEM = re.compile(
    r"\b(broken|not\s+working|does\s*n[o']t\s+work|won'?t|cannot|can'?t|fails?"
    r"|failing|crash(ed|es)?|stopped\s+working|is\s+down)\b",
    re.IGNORECASE,
)
UPDATE_VERB = re.compile(
    r"\b(set|update|change|mark|move|reopen|make)\b", re.IGNORECASE
)
CLOSE_VERB = re.compile(r"\b(close|resolve)\b", re.IGNORECASE)

# Each status with the words that name it. They are checked in order, so
# "in progress" wins over a later "open" in the same sentence.
STATUS_WORDS = (
    ("in_progress", r"in[\s_-]*progress|working|started"),
    ("resolved", r"resolved|fixed|done"),
    ("closed", r"closed"),
    ("open", r"re-?open(ed)?|open"),
)
PRIORITY_WORDS = (
    ("critical", r"critical|blocker|emergency"),
    ("high", r"high|urgent|asap"),
    ("low", r"low"),
    ("medium", r"medium|normal"),
)
# Keywords per category, checked in order: a VPN account is a network ticket.
CATEGORY_WORDS = (
    ("network", r"vpn|network|wi-?fi|internet|proxy|dns|firewall|ethernet"),
    (
        "hardware",
        r"laptop|monitor|keyboard|mouse|screen|printer|headset|dock(ing)?"
        r"|charger|battery|computer|desktop|phone|webcam",
    ),
    ("access", r"access|account|permissions?|login|log\s*in|password|credentials?|sso"),
    (
        "software",
        r"software|install|licen[cs]e|app|application|upgrade|ide|editor|office"
        r"|excel|slack|zoom|docker|python",
    ),
)
# Word appended to a one-word title, so "create VPN ticket" is titled "VPN access".
TITLE_SUFFIX = {
    "network": "access",
    "access": "access",
    "hardware": "issue",
    "software": "installation",
    "other": "request",
}
TITLE_PREFIXES = (
    r"(please|hi|hello|hey)\b[,!\s]*",
    r"(can|could|would)\s+you\s+(please\s+)?",
    r"(create|open|raise|file|submit|log|make)\s+(me\s+)?((a|an|the)\s+)?(new\s+)?",
    r"(i\s+(need|want|would\s+like|'d\s+like)|we\s+need|need|request(ing)?"
    r"|get\s+me|give\s+me|grant\s+me)\s+",
    r"ticket\b\s*(for|about|to|regarding|re|on)?\s*[:\-]?\s*",
    r"(a|an|the|some|my|our)\s+",
)
TITLE_TRAILERS = r"\s+ticket\s*$"
MAX_TITLE_LENGTH = 80


@dataclass(frozen=True)
class TicketRequest:
    """A request mapped to one skill, with the values the skill needs."""

    skill: str
    ticket_id: int | None = None
    status: str | None = None
    priority: str | None = None
    scope_all: bool = False
    statuses: tuple[str, ...] = ()
    title: str = ""
    category: str = "other"
    explicit_help: bool = False


def parse_request(text: str) -> TicketRequest:
    """Return the skill call that `text` requests, or skill "help" if none fits."""
    ticket_id = find_ticket_id(text)
    if HELP.search(text):
        return TicketRequest("help", explicit_help=True)
    if LIST.search(text) and ticket_id is None:
        return TicketRequest(
            "list_tickets",
            scope_all=ALL_TICKETS.search(text) is not None or not MINE.search(text),
            statuses=list_statuses(text),
        )
    if CREATE_VERB.search(text) and not ID_AFTER_TICKET.search(text):
        return create_request(text)
    if ticket_id is not None:
        return ticket_request(text, ticket_id)
    if REQUEST.search(text) or PROBLEM.search(text):
        return create_request(text)
    return TicketRequest("help")


def find_ticket_id(text: str) -> int | None:
    match = TICKET_ID.search(text)
    return int(match.group(1)) if match else None


def ticket_request(text: str, ticket_id: int) -> TicketRequest:
    if UPDATE_VERB.search(text):
        status = find_word(text, STATUS_WORDS)
        if re.search(r"\breopen", text, re.IGNORECASE):
            status = "open"
        priority = find_word(text, PRIORITY_WORDS)
        return TicketRequest("update_ticket", ticket_id, status, priority)
    close = CLOSE_VERB.search(text)
    if close:
        status = "resolved" if close.group(1).lower() == "resolve" else "closed"
        return TicketRequest("close_ticket", ticket_id, status)
    return TicketRequest("show_ticket", ticket_id)


def create_request(text: str) -> TicketRequest:
    category = find_word(text, CATEGORY_WORDS) or "other"
    priority = find_word(text, PRIORITY_WORDS[:2]) or "medium"
    return TicketRequest(
        "create_ticket",
        priority=priority,
        title=ticket_title(text, category),
        category=category,
    )


def list_statuses(text: str) -> tuple[str, ...]:
    """Return the statuses a listing requests. "open" means not yet finished."""
    status = find_word(text, STATUS_WORDS)
    if status == "open":
        return ("open", "in_progress")
    if status is None:
        return ()
    return (status,)


def find_word(text: str, table: tuple[tuple[str, str], ...]) -> str | None:
    for value, pattern in table:
        if re.search(rf"\b({pattern})\b", text, re.IGNORECASE):
            return value
    return None


def ticket_title(text: str, category: str) -> str:
    """Derive a short title: the request without its command words."""
    title = " ".join(text.split()).strip(" .!?")
    changed = True
    while changed:
        changed = False
        for prefix in TITLE_PREFIXES:
            stripped = re.sub(rf"^{prefix}", "", title, count=1, flags=re.IGNORECASE)
            if stripped != title:
                title, changed = stripped, True
    title = re.sub(TITLE_TRAILERS, "", title, flags=re.IGNORECASE).strip(" .!?:-")
    if not title:
        title = category
    if len(title.split()) == 1:
        title = f"{title} {TITLE_SUFFIX[category]}"
    title = title[0].upper() + title[1:]
    return title[:MAX_TITLE_LENGTH]
