"""Atomic writes of private files in the run directory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE_FILE_MODE = 0o600


def write_private_file(target: Path, text: str, mode: int = PRIVATE_FILE_MODE) -> None:
    """Replace `target` with `text` atomically; raise OSError on failure.

    The text goes to a temporary file in the same directory, created with mode
    0600 by mkstemp so it is never readable by others, which is flushed to disk
    and renamed over `target`. A failed write leaves the old file in place.
    """
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
