"""Everything jarvisctl prints goes through this module, the only Rich importer."""

from __future__ import annotations

import os
import sys

from rich.console import Console

console = Console(no_color=bool(os.environ.get("NO_COLOR")) or None)
error_console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")) or None)


def print_error(message: str) -> None:
    """Print one error line on stderr."""
    if error_console.is_terminal:
        error_console.print(f"[bold red]error:[/] {message}", highlight=False)
    else:
        print(f"error: {message}", file=sys.stderr)
