"""The `jarvisctl` command line.

Heavy modules (litellm, fastapi, the a2a SDK) are imported inside the commands
that need them, so `jarvisctl --help` and `jarvisctl status` start fast.
"""

from __future__ import annotations

import logging
import sys

import typer

from jarvisctl.errors import EXIT_FAILURE, JarvisError

app = typer.Typer(
    help="Run, supervise and talk to the local agent stack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

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


# Commands of tokens, invoke and agents live in their own module.
from jarvisctl import cli_agents  # noqa: E402

cli_agents.register(app)


def main() -> None:
    """Run the CLI and turn our errors into one line on stderr and an exit code."""
    try:
        app(standalone_mode=False)
    except JarvisError as error:
        if _debug:
            raise
        from jarvisctl.views import print_error

        print_error(str(error))
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - the last guard before a traceback
        import click

        if isinstance(error, click.exceptions.Exit):
            sys.exit(error.exit_code)
        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(error.exit_code)
        if isinstance(error, click.exceptions.Abort):
            sys.exit(EXIT_FAILURE)
        if _debug:
            raise
        print(f"jarvisctl: unexpected error: {error} (rerun with --debug)", file=sys.stderr)
        sys.exit(EXIT_FAILURE)
