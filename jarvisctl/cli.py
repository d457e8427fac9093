"""The `jarvisctl` command line.

Heavy modules (litellm, fastapi, the a2a SDK) are imported inside the commands
that need them, so `jarvisctl --help` and `jarvisctl status` start fast.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import TYPE_CHECKING

import typer

from jarvisctl.config import Settings, load_settings, read_stop_timeout
from jarvisctl.errors import EXIT_FAILURE, JarvisError
from jarvisctl.logfiles import LogLine
from jarvisctl.status import measure_resources

if TYPE_CHECKING:
    from jarvisctl.stack import StackResult

# Help and usage errors drawn in Rich panels unless the output is plain text.
_PLAIN_OUTPUT = bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()

app = typer.Typer(
    help="Run, supervise and talk to the local agent stack.",
    rich_markup_mode=None if _PLAIN_OUTPUT else "rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Exit code after Ctrl-C, as shells report a process ended by SIGINT.
EXIT_INTERRUPTED = 130
# Seconds between two frames of `status --watch`.
WATCH_INTERVAL = 1.0

# Passwords .env.template ships for local demos; never fit for an exposed stack.
DEMO_PASSWORDS = {
    "JARVIS_ADMIN_PASSWORD": "admin123",
    "JARVIS_DEMO_PASSWORD": "demo123",
}

# Set by the --debug option; main() shows a traceback only when it is on.
_debug = False

logger = logging.getLogger(__name__)


@app.callback()
def root(
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks and debug logs on errors."
    ),
) -> None:
    """Run, supervise and talk to the local agent stack.

    Example: jarvisctl up && jarvisctl status
    """
    global _debug
    _debug = debug
    if debug:
        logging.basicConfig(level=logging.DEBUG)


def _settings(stopping: bool = False) -> Settings:
    """Load the project's settings and check their values once, up front."""
    from jarvisctl.stack import validate_settings

    settings = load_settings()
    validate_settings(settings, stopping=stopping)
    return settings


ServicesArgument = typer.Argument(
    None, help="Services to act on (default: all).", show_default=False
)
StartTimeoutOption = typer.Option(
    None,
    "--timeout",
    min=0.1,
    help="Seconds to wait for the services to become healthy "
    "(default: the sum of their start timeouts along the dependency chain).",
)
StopTimeoutOption = typer.Option(
    None,
    "--timeout",
    min=0.1,
    help="Seconds each service gets between SIGTERM and SIGKILL "
    "(default: JARVIS_STOP_TIMEOUT, else 10).",
)


@app.command()
def init() -> None:
    """Create .env from .env.template and generate the missing secrets.

    Fills JWT_SECRET_KEY and LITELLM_MASTER_KEY when empty, keeps every value
    you set, and leaves .env readable by you only (mode 0600). Safe to rerun.

    Example: jarvisctl init
    """
    from jarvisctl import stack, views

    settings = load_settings()
    existed = settings.env_file.exists()
    generated = stack.init_project(settings)
    if not existed:
        views.print_info(f"Created {settings.env_file}")
    if generated:
        views.print_info(f"Generated {', '.join(generated)} in {settings.env_file}")
    elif existed:
        views.print_info(f"{settings.env_file} is complete; nothing to change")


@app.command()
def up(
    services: list[str] | None = ServicesArgument,
    foreground: bool = typer.Option(
        False, "--foreground", help="Run the supervisor here and print service logs."
    ),
    timeout: float | None = StartTimeoutOption,
) -> None:
    """Start the stack (or the named services and their dependencies).

    Waits until every service passes its health check; prints the last log
    lines of any service that does not and exits 1.

    Example: jarvisctl up tickets
    """
    from jarvisctl import stack, views

    settings = _settings()
    names = stack.resolve_services(services or [])
    if foreground:
        _run_foreground(settings, names)
        return
    try:
        with views.status_progress() as update:
            result = stack.up(settings, names, timeout=timeout, on_update=update)
    except KeyboardInterrupt:
        views.print_notice(
            "interrupted: the supervisor keeps starting the stack; "
            "run `jarvisctl down` to stop it"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    _report_result(result)
    if "gateway" in names:
        _warn_without_gateway_token(settings)
    _warn_if_exposed(settings)


def _report_result(result: StackResult) -> None:
    """Print the final table of up or restart; exit 1 when a service failed."""
    from jarvisctl import views

    measure_resources(result.statuses)
    failed = [failure.name for failure in result.failures]
    views.print_status(result.statuses, skip_errors=failed)
    if not result.ok:
        views.print_failures(result.failures)
        raise typer.Exit(EXIT_FAILURE)


def _warn_if_exposed(settings: Settings) -> None:
    """Warn when the services listen beyond loopback, more so with demo passwords."""
    import ipaddress

    from jarvisctl import views

    host = settings.host
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return
    message = f"the services listen on {host}, reachable from other hosts"
    demo = [
        key
        for key, value in DEMO_PASSWORDS.items()
        if settings.env.get(key, value) == value
    ]
    if demo:
        message += f"; change the demo passwords in .env ({', '.join(demo)})"
    views.print_warning(message)


def _warn_without_gateway_token(settings: Settings) -> None:
    from jarvisctl import views
    from jarvisctl.tokens import current_token

    if not current_token(settings):
        views.print_warning(
            "the gateway has no JWT_TOKEN, so the agents reject calls it relays; "
            "run `jarvisctl token refresh`"
        )


def _run_foreground(settings: Settings, names: list[str]) -> None:
    from jarvisctl import catalog, stack, supervisor, views

    stack.init_project(settings)
    known = catalog.service_names()
    width = max(len(name) for name in known)

    def on_line(service: str, line: str) -> None:
        views.print_log_line(LogLine(service, "", line), known, width)

    if not _debug:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
        )
    runner = supervisor.Supervisor(
        settings.project_dir, services=catalog.catalog(), on_line=on_line, start=names
    )
    # The supervisor turns Ctrl-C into a shutdown of every service, then returns.
    runner.run()


@app.command()
def down(
    services: list[str] | None = ServicesArgument,
    timeout: float | None = StopTimeoutOption,
) -> None:
    """Stop the stack (or the named services) and check that nothing is left.

    Without a running supervisor, the processes recorded in state.json are
    stopped directly.

    Example: jarvisctl down
    """
    from jarvisctl import stack, views

    settings = _settings(stopping=True)
    if timeout is None:
        timeout = read_stop_timeout(settings, views.print_warning)
    result = stack.down(settings, services or [], timeout=timeout)
    if result.stopped:
        views.print_info(f"Stopped {', '.join(result.stopped)}")
    else:
        views.print_info("Nothing was running")
    for leftover in result.leftovers:
        views.print_warning(leftover)
    if result.leftovers:
        raise typer.Exit(EXIT_FAILURE)


@app.command()
def restart(
    services: list[str] | None = ServicesArgument,
    timeout: float | None = StartTimeoutOption,
) -> None:
    """Restart the named services (default: all) and wait until they are healthy.

    Example: jarvisctl restart gateway
    """
    from jarvisctl import stack, views

    settings = _settings()
    with views.status_progress() as update:
        result = stack.restart(
            settings, services or [], timeout=timeout, on_update=update
        )
    _report_result(result)


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
    watch: bool = typer.Option(
        False, "--watch", help="Refresh every second until Ctrl-C."
    ),
    iterations: int | None = typer.Option(
        None, "--iterations", hidden=True, min=1, help="Stop --watch after N frames."
    ),
) -> None:
    """Show each service's pid, state, uptime, restarts, CPU, memory and health.

    Exits 0 when every service is healthy, 1 otherwise.

    Example: jarvisctl status --json
    """
    from jarvisctl import stack, views
    from jarvisctl.status import all_healthy

    settings = _settings()
    if watch:
        try:
            views.watch_status(
                lambda: stack.collect_status(settings),
                WATCH_INTERVAL,
                iterations,
                time.sleep,
            )
        except KeyboardInterrupt:
            pass
    statuses = stack.collect_status(settings)
    if as_json:
        views.print_json([row.to_dict() for row in statuses])
    elif not watch:
        views.print_status(statuses)
    if not all_healthy(statuses):
        raise typer.Exit(EXIT_FAILURE)


@app.command()
def logs(
    services: list[str] | None = ServicesArgument,
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Keep printing new lines until Ctrl-C."
    ),
    lines: int = typer.Option(50, "--lines", "-n", min=0, help="Lines to show first."),
    duration: float | None = typer.Option(
        None, "--duration", hidden=True, help="Stop --follow after this many seconds."
    ),
) -> None:
    """Print the services' logs merged in time order, each line with its service.

    Example: jarvisctl logs tickets gateway -f
    """
    from jarvisctl import catalog, logfiles, stack, views

    settings = load_settings()
    stack.check_run_dir(settings)
    names = tuple(stack.validate_services(services or []))
    known = catalog.service_names()
    width = max(len(name) for name in names)
    if not follow and not any(settings.log_dir.glob("*.log*")):
        views.print_info(f"no logs yet in {settings.log_dir}; run `jarvisctl up`")
        return
    for line in logfiles.read_merged(settings.log_dir, names, lines):
        views.print_log_line(line, known, width)
    if not follow:
        return
    deadline = None if duration is None else time.monotonic() + duration

    def stop() -> bool:
        return deadline is not None and time.monotonic() > deadline

    try:
        for line in logfiles.follow(settings.log_dir, names, stop=stop):
            views.print_log_line(line, known, width)
    except KeyboardInterrupt:
        return


@app.command()
def ports(
    free: bool = typer.Option(
        False, "--free", help="Stop leftover listeners of this stack on its ports."
    ),
    force: bool = typer.Option(
        False, "--force", help="With --free, also stop processes that are not ours."
    ),
    yes: bool = typer.Option(
        False, "--yes", "-y", help="With --force, do not ask before stopping."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """Show which process listens on each service port, and whether it is ours.

    Example: jarvisctl ports --free --force
    """
    from jarvisctl import stack, views

    settings = _settings()
    failed = False
    if free:

        def confirm(row: stack.PortRow) -> bool:
            if yes:
                return True
            assert row.listener is not None
            return views.confirm(
                f"Stop {row.listener.label} on port {row.port} ({row.service})?"
            )

        done, skipped = stack.free_ports(settings, force=force, confirm=confirm)
        for message in done:
            views.print_info(message)
        for message in skipped:
            views.print_warning(message)
        failed = bool(skipped)
    rows = stack.port_rows(settings)
    if as_json:
        views.print_json([row.to_dict() for row in rows])
    else:
        views.print_ports(rows)
    if failed:
        raise typer.Exit(EXIT_FAILURE)


# Commands of tokens, invoke and agents live in their own module.
from jarvisctl import cli_agents  # noqa: E402

cli_agents.register(app)


def main() -> None:
    """Run the CLI and turn our errors into one line on stderr and an exit code.

    In standalone mode typer prints usage errors itself and exits 2, and our
    own errors pass through it to be reported here.
    """
    try:
        app()
    except JarvisError as error:
        if _debug:
            raise
        from jarvisctl.views import print_error

        print_error(str(error))
        sys.exit(error.exit_code)
    except BrokenPipeError:
        # The reader (for example `head`) went away; that is not a failure.
        _silence_stdout()
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - the last guard before a traceback
        if _debug:
            raise
        print(f"error: unexpected {type(error).__name__}: {error}", file=sys.stderr)
        print("error: rerun with --debug for the traceback", file=sys.stderr)
        sys.exit(EXIT_FAILURE)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the flush at exit raises no second error."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
