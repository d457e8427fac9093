"""Read and update the project's `.env` without losing what the user wrote.

Reads go through python-dotenv, which accepts CRLF line endings, `export`
prefixes, quoted values and comments. Writes change only the keys given: the
new file is written next to the old one, flushed, given mode 0600 and renamed
over it, under an exclusive lock so that two writers cannot interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dotenv import dotenv_values

from jarvisctl.errors import EnvFileError

ENV_FILE_MODE = 0o600

logger = logging.getLogger(__name__)


def read_env(path: Path) -> dict[str, str]:
    """Return the keys of a `.env` file; a missing file has none."""
    if not path.exists():
        return {}
    try:
        values = dotenv_values(path, interpolate=False)
    except (OSError, UnicodeDecodeError) as error:
        raise EnvFileError(f"cannot read {path}: {error}; check the file") from None
    return {key: value for key, value in values.items() if value is not None}


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `<path>.lock` for the duration of the block."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        handle = open(lock_path, "a+")
    except OSError as error:
        raise EnvFileError(
            f"cannot lock {path}: {error.strerror}; check the directory permissions"
        ) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_env(path: Path, values: dict[str, str]) -> None:
    """Set keys in `.env` in place, keeping every other line and its order."""
    with locked(path):
        _rewrite(path, values)


def _rewrite(path: Path, values: dict[str, str]) -> None:
    fd, temp_name = tempfile.mkstemp(prefix=".env.", dir=path.parent)
    temp = Path(temp_name)
    try:
        os.close(fd)
        original = path.read_bytes() if path.exists() else b""
        temp.write_bytes(_with_values(original, values))
        os.chmod(temp, ENV_FILE_MODE)
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise EnvFileError(
            f"cannot write {path}: {error.strerror}; check free space and permissions"
        ) from None


def _with_values(original: bytes, values: dict[str, str]) -> bytes:
    """Return `original` with each key's last assignment replaced or appended.

    Other lines keep their bytes, CRLF endings included. Values are written
    unquoted, as a user would type tokens and hex keys; none of the values
    jarvisctl generates contains spaces or quotes.
    """
    lines = original.splitlines(keepends=True)
    newline = b"\r\n" if lines and lines[0].endswith(b"\r\n") else b"\n"
    for key, value in values.items():
        name = re.escape(key.encode())
        pattern = re.compile(rb"^\s*(export\s+)?" + name + rb"\s*=")
        assignment = f"{key}={value}".encode()
        matches = [
            (index, found)
            for index, line in enumerate(lines)
            if (found := pattern.match(line))
        ]
        if matches:
            index, found = matches[-1]
            ending = lines[index][len(lines[index].rstrip(b"\r\n")) :]
            lines[index] = (found.group(1) or b"") + assignment + (ending or newline)
            continue
        if lines and not lines[-1].endswith(b"\n"):
            lines[-1] += newline
        lines.append(assignment + newline)
    return b"".join(lines)
