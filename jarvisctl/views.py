"""Everything jarvisctl prints goes through this module, the only Rich importer.

On a terminal, tables have borders and colours and progress is live. When the
output is piped or NO_COLOR is set, the same rows come out as plain text with
no escape codes, one line per row.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from jarvisctl.logfiles import LogLine
    from jarvisctl.stack import Failure, PortRow
    from jarvisctl.status import ServiceStatus

# Width of piped output: wide enough that a status row never wraps in a file.
PLAIN_WIDTH = 200
# Terminal escape sequences in service output (LiteLLM colours its own lines):
# CSI sequences such as colours, and OSC sequences such as window titles.
ANSI_ESCAPE = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\|$)"  # OSC, ended by BEL, ST or the line
)
# Colours of the service name prefixes in `logs` and `up --foreground`.
SERVICE_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_red")
# Status columns that never wrap, in order; HEALTH and CARD follow and fold.
STATUS_FIXED_COLUMNS = (
    "NAME", "PORT", "PID", "STATE", "UPTIME", "RESTARTS", "CPU%", "RSS"
)
# Columns dropped first when the terminal is too narrow for the whole table.
STATUS_OPTIONAL_COLUMNS = ("CPU%", "RSS")
# Room HEALTH and CARD need to fold into readable pieces, gaps included.
STATUS_FOLDED_MIN_WIDTH = 24
# Blank columns between two table columns.
STATUS_COLUMN_GAP = 2
STATE_STYLES = {
    "running": "green",
    "external": "cyan",
    "starting": "yellow",
    "backoff": "yellow",
    "stopped": "dim",
    "crash-looping": "bold red",
}

# NO_COLOR (https://no-color.org) turns off every style, bold included, so the
# output is plain text even on a terminal.
_STYLES = None if os.environ.get("NO_COLOR") else "auto"
console = Console(color_system=_STYLES)
error_console = Console(stderr=True, color_system=_STYLES)


def print_error(message: str) -> None:
    """Print one error line on stderr."""
    if error_console.is_terminal:
        error_console.print(f"[bold red]error:[/] {message}", highlight=False)
    else:
        print(f"error: {message}", file=sys.stderr)


def is_plain() -> bool:
    """Return True when output goes to a pipe or file, or NO_COLOR is set."""
    return not console.is_terminal or _STYLES is None


def _plain_console() -> Console:
    if is_plain() and console.width < PLAIN_WIDTH:
        console.width = PLAIN_WIDTH
    return console


def print_info(message: str) -> None:
    """Print one line on stdout, without markup."""
    _plain_console().print(message, markup=False, highlight=False, soft_wrap=True)


def print_warning(message: str) -> None:
    """Print one warning line on stderr."""
    if error_console.is_terminal:
        error_console.print(Text.assemble(("warning: ", "yellow"), message))
    else:
        print(f"warning: {message}", file=sys.stderr)


def print_notice(message: str) -> None:
    """Print one line on stderr, without a prefix or markup."""
    error_console.print(message, markup=False, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Write `data` as indented JSON on stdout, never coloured."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def confirm(question: str) -> bool:
    """Ask a yes/no question on the terminal; a pipe or EOF counts as no."""
    try:
        # Without markup=False Rich reads `[y/N]` as a style tag and drops it.
        answer = console.input(f"{question} [y/N] ", markup=False)
    except EOFError:
        # End the prompt's line so that the next output starts on its own.
        console.print()
        return False
    return answer.strip().lower() in ("y", "yes")


def format_uptime(seconds: float | None) -> str:
    """Return `seconds` as `45s`, `12m05s` or `3h07m`."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def format_bytes(count: int | None) -> str:
    """Return a byte count in MB with one decimal, as `ps` users read it."""
    if count is None:
        return "-"
    return f"{count / 1_000_000:.1f} MB"


def format_health(status: ServiceStatus) -> str:
    """Return `200 3.1ms`, the error of a failed probe, or `-`."""
    if status.health_ok is None:
        return "-"
    if status.health_status is not None:
        latency = f" {status.latency_ms:.1f}ms" if status.latency_ms is not None else ""
        return f"{status.health_status}{latency}"
    return (status.health_error or "failed").split(":")[0]


def format_card(status: ServiceStatus) -> str:
    """Return `TicketsAgent 1.0.0 (4 skills)` for an agent with a card, else `-`."""
    if not status.card_name:
        return "-"
    version = f" {status.card_version}" if status.card_version else ""
    skills = status.card_skills if status.card_skills is not None else 0
    return f"{status.card_name}{version} ({skills} skills)"


def status_table(statuses: list[ServiceStatus], width: int | None = None) -> Table:
    """Build the status table: one row per service, to fit `width` columns.

    Every column but HEALTH and CARD keeps its header and values whole; those
    two fold onto more lines. When even that does not fit, CPU% and RSS are
    left out (`status --json` still has them).
    """
    rows = [_status_cells(status) for status in statuses]
    headers = list(STATUS_FIXED_COLUMNS)
    widths = [
        max([len(header), *(len(row[index]) for row in rows)])
        for index, header in enumerate(headers)
    ]
    needed = sum(widths) + STATUS_FOLDED_MIN_WIDTH + STATUS_COLUMN_GAP * len(widths)
    keep = list(range(len(headers)))
    if needed > (width or console.width):
        keep = [i for i in keep if headers[i] not in STATUS_OPTIONAL_COLUMNS]

    table = Table(
        box=None if is_plain() else box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for index in keep:
        table.add_column(headers[index], no_wrap=True, min_width=len(headers[index]))
    table.add_column("HEALTH", overflow="fold", min_width=len("HEALTH"))
    table.add_column("CARD", overflow="fold", min_width=len("CARD"))
    for status, cells in zip(statuses, rows):
        texts = [Text(cells[index]) for index in keep]
        texts[STATUS_FIXED_COLUMNS.index("STATE")].style = STATE_STYLES.get(
            status.state, ""
        )
        table.add_row(
            *texts,
            Text(format_health(status), style=_health_style(status)),
            format_card(status),
        )
    return table


def _status_cells(status: ServiceStatus) -> list[str]:
    return [
        status.name,
        str(status.port),
        str(status.pid) if status.pid is not None else "-",
        status.state,
        format_uptime(status.uptime),
        str(status.restarts),
        f"{status.cpu_percent:.1f}" if status.cpu_percent is not None else "-",
        format_bytes(status.rss_bytes),
    ]


def _health_style(status: ServiceStatus) -> str:
    if status.health_ok is None:
        return "dim"
    return "green" if status.health_ok else "red"


def status_errors(
    statuses: list[ServiceStatus], skip: Collection[str] = ()
) -> list[str]:
    """Return `name: error` for each service that is not running and has an error."""
    return [
        f"{status.name}: {status.error}"
        for status in statuses
        if status.error and status.state != "running" and status.name not in skip
    ]


def status_view(
    statuses: list[ServiceStatus],
    width: int | None = None,
    skip_errors: Collection[str] = (),
) -> Group:
    """Build the status table followed by each service's error on its own lines."""
    lines = status_errors(statuses, skip_errors)
    errors = [Text(line, style="red") for line in lines]
    return Group(status_table(statuses, width), *errors)


def print_status(
    statuses: list[ServiceStatus], skip_errors: Collection[str] = ()
) -> None:
    """Print the status table, then the errors of services not in `skip_errors`."""
    out = _plain_console()
    out.print(status_view(statuses, out.width, skip_errors))


@contextmanager
def status_progress() -> Iterator[Callable[[list[ServiceStatus]], None]]:
    """Yield an update function that shows service states while they change.

    A terminal gets a live table; a pipe gets one line per state change.
    """
    if is_plain():
        seen: dict[str, str] = {}

        def update_plain(statuses: list[ServiceStatus]) -> None:
            for status in statuses:
                previous = seen.get(status.name)
                seen[status.name] = status.state
                # A service still waiting for its dependencies is no news.
                if previous is None and status.state == "stopped":
                    continue
                if previous != status.state:
                    print_info(f"{status.name}: {status.state}")

        yield update_plain
        return
    with Live(console=console, refresh_per_second=4, transient=True) as live:

        def update_live(statuses: list[ServiceStatus]) -> None:
            live.update(status_view(statuses))

        yield update_live


def watch_status(
    fetch: Callable[[], list[ServiceStatus]],
    interval: float,
    iterations: int | None,
    sleep: Callable[[float], None],
) -> None:
    """Redraw the status table every `interval` s, `iterations` times or forever."""
    count = 0
    with Live(console=_plain_console(), auto_refresh=False) as live:
        while iterations is None or count < iterations:
            live.update(status_view(fetch()), refresh=True)
            count += 1
            if iterations is None or count < iterations:
                sleep(interval)


def print_failures(failures: list[Failure]) -> None:
    """Print each failed service, its reason and the end of its log on stderr."""
    for failure in failures:
        print_error(f"{failure.name}: {failure.reason}")
        if failure.log_tail:
            error_console.print(
                f"last {len(failure.log_tail)} lines of {failure.name}.log:",
                markup=False,
                highlight=False,
            )
            for line in failure.log_tail:
                error_console.print(
                    f"  {line}", markup=False, highlight=False, soft_wrap=True
                )


def service_colour(service: str, names: tuple[str, ...]) -> str:
    """Return the prefix colour of `service`, stable across runs."""
    index = names.index(service) if service in names else len(service)
    return SERVICE_COLOURS[index % len(SERVICE_COLOURS)]


def print_log_line(
    line: LogLine, names: tuple[str, ...], name_width: int, timestamps: bool = True
) -> None:
    """Print one log line with its service name as a coloured prefix."""
    prefix = f"{line.service:<{name_width}} | "
    body = ANSI_ESCAPE.sub("", line.text)
    if timestamps and line.timestamp:
        body = f"{line.timestamp} {body}"
    text = Text.assemble((prefix, service_colour(line.service, names)), body)
    _plain_console().print(text, soft_wrap=True, highlight=False)


def print_ports(rows: list[PortRow]) -> None:
    """Print the ports table: service, port, listener pid and name, owner."""
    table = Table(box=None if is_plain() else box.SIMPLE_HEAD, pad_edge=False)
    for column in ("SERVICE", "PORT", "PID", "PROCESS", "OWNER", "COMMAND"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        listener = row.listener
        if listener is None:
            table.add_row(row.service, str(row.port), "-", "-", Text("free", "dim"), "")
            continue
        command = " ".join(listener.cmdline)[:60]
        owner_style = "green" if row.owner == "ours" else "yellow"
        table.add_row(
            row.service,
            str(row.port),
            str(listener.pid) if listener.pid is not None else "?",
            listener.name or "?",
            Text(row.owner or "?", owner_style),
            command,
        )
    _plain_console().print(table)


# Views of the token, invoke and agents commands.

if TYPE_CHECKING:
    from jarvisctl.cli_agents import AgentRow
    from jarvisctl.invoke import InvokeResult
    from jarvisctl.tokens import TokenCheck, TokenInfo

# Rows of the invoke result table shown before the rest is cut off.
MAX_RECORD_ROWS = 50


def format_time(timestamp: float | None) -> str:
    """Format a Unix time as local `YYYY-MM-DD HH:MM:SS`, or `unknown`."""
    import time

    if timestamp is None:
        return "unknown"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def format_relative(timestamp: float | None) -> str:
    """Format a Unix time relative to now: `in 23h 59m` or `5m ago`."""
    import time

    if timestamp is None:
        return "unknown"
    delta = timestamp - time.time()
    text = format_uptime(abs(delta))
    return f"in {text}" if delta >= 0 else f"{text} ago"


def _key_value_table(rows: list[tuple[str, str]]) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, value in rows:
        table.add_row(key, Text(value))
    return table


def print_token_refreshed(info: TokenInfo, gateway_restarted: bool) -> None:
    """Print who the new JWT_TOKEN is for, its expiry and the masked token."""
    expires = f"{format_time(info.expires_at)} ({format_relative(info.expires_at)})"
    gateway = "restarted" if gateway_restarted else "not running, nothing to restart"
    rows = [
        ("user", info.username),
        ("role", info.role),
        ("expires", expires),
        ("token", info.masked),
        ("gateway", gateway),
    ]
    _plain_console().print(_key_value_table(rows))


def _time_left(info: TokenInfo) -> str:
    return "expired" if info.expired() else format_relative(info.expires_at)


def print_token_status(info: TokenInfo, check: TokenCheck, token: str | None) -> None:
    """Print the JWT_TOKEN details; the whole token only when `token` is given."""
    if check.accepted is None:
        accepted = "unknown (auth service not reachable)"
    elif check.accepted:
        accepted = "yes"
    else:
        accepted = f"no ({check.reason})"
    rows = [
        ("user", info.username),
        ("role", info.role),
        ("issued", format_time(info.issued_at)),
        ("expires", format_time(info.expires_at)),
        ("time left", _time_left(info)),
        ("accepted by auth", accepted),
    ]
    if token is None:
        rows.append(("token", info.masked))
    _plain_console().print(_key_value_table(rows))
    if token is not None:
        # On a line of its own so that no table cell truncates or wraps it.
        print_info(f"token {token}")


def print_invoke_update(update: str) -> None:
    """Print one streamed task update."""
    _plain_console().print(Text(f"… {update}", style="dim"))


def print_invoke_result(result: InvokeResult) -> None:
    """Print the agent's text as Markdown and its records as a table."""
    out = _plain_console()
    if result.text:
        if is_plain():
            out.print(result.text, markup=False, highlight=False, soft_wrap=True)
        else:
            # Imported here because plain output never needs markdown-it.
            from rich.markdown import Markdown

            out.print(Markdown(result.text))
    if result.records:
        out.print(_records_table(result.records, result.columns))
    if not result.text and not result.records:
        out.print(Text(f"{result.agent} returned no text ({result.state})", "dim"))


def _records_table(
    records: list[dict[str, Any]], order: list[str] | None = None
) -> Table:
    columns: list[str] = list(dict.fromkeys(order or []))
    for record in records:
        columns.extend(key for key in record if key not in columns)
    table = Table(box=None if is_plain() else box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        table.add_column(str(column).upper())
    for record in records[:MAX_RECORD_ROWS]:
        table.add_row(*(_cell(record.get(column)) for column in columns))
    if len(records) > MAX_RECORD_ROWS:
        table.caption = f"{len(records) - MAX_RECORD_ROWS} more rows; use --json"
    return table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def print_agents(rows: list[AgentRow]) -> None:
    """Print each agent as the gateway, its card and the registry see it."""
    table = Table(box=None if is_plain() else box.SIMPLE_HEAD, pad_edge=False)
    for column in ("AGENT", "CARD", "GATEWAY", "LIVE", "VERSION", "REGISTRY", "URL"):
        table.add_column(column, no_wrap=True)
    table.add_column("PROBLEMS")
    for row in rows:
        table.add_row(
            row.name,
            row.card_name,
            Text(row.gateway, "green" if row.gateway == "listed" else "yellow"),
            Text(row.live, "green" if row.live == "up" else "red"),
            row.live_version or row.registry_version or row.gateway_version or "-",
            Text(row.registry, "green" if row.registry == "registered" else "yellow"),
            row.live_url or row.registry_url or row.gateway_url or "-",
            Text("; ".join(row.problems) or "ok", "red" if row.problems else "green"),
        )
    _plain_console().print(table)
