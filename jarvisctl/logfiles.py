"""Service log files: a size-rotating writer, merged reading and follow mode.

The supervisor prefixes every line it copies from a service with a local
timestamp such as `2026-12-04T15:40:01.123`. The prefix sorts as text, which
lets lines of several services be merged in time order. A line without the
prefix (written by hand, or a partial line) takes the time of the line before.
"""

from __future__ import annotations

import heapq
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

# Large enough for hours of INFO logs, small enough to scroll through.
MAX_LOG_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3
LOG_SUFFIX = ".log"
# How often follow mode looks for new lines and for rotated files.
FOLLOW_INTERVAL = 0.25
TIMESTAMP_PATTERN = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) (.*)$")

logger = logging.getLogger(__name__)


@dataclass
class LogLine:
    """One line of a service log."""

    service: str
    timestamp: str
    text: str


def format_line(text: str, when: float | None = None) -> str:
    """Prefix `text` with the local time `when` (default now), millisecond precision."""
    moment = datetime.fromtimestamp(time.time() if when is None else when)
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]} {text}"


def parse_line(service: str, raw: str, previous: str = "") -> LogLine:
    """Split a stored line into its timestamp and text."""
    raw = raw.rstrip("\n")
    match = TIMESTAMP_PATTERN.match(raw)
    if match:
        return LogLine(service, match.group(1), match.group(2))
    return LogLine(service, previous, raw)


def log_path(log_dir: Path, service: str) -> Path:
    return log_dir / f"{service}{LOG_SUFFIX}"


class RotatingLogWriter:
    """Append timestamped lines to a file, rotating it at `max_bytes`.

    Safe to share between threads. If the file is deleted or moved away while
    open, the next write opens a new one at the same path.
    """

    def __init__(
        self, path: Path, max_bytes: int = MAX_LOG_BYTES, backups: int = LOG_BACKUPS
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._handle: IO[str] | None = None

    def write_line(self, text: str, when: float | None = None) -> None:
        line = format_line(text.rstrip("\n"), when) + "\n"
        size = len(line.encode("utf-8", errors="replace"))
        with self._lock:
            handle = self._current_handle()
            if handle.tell() > 0 and handle.tell() + size > self.max_bytes:
                self._rotate()
                handle = self._current_handle()
            handle.write(line)
            handle.flush()

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def _current_handle(self) -> IO[str]:
        if self._handle is not None and not self._still_linked(self._handle):
            logger.info("Reopened %s after it was removed", self.path)
            self._handle.close()
            self._handle = None
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8", errors="replace")
        return self._handle

    def _still_linked(self, handle: IO[str]) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        return os.path.samestat(on_disk, os.fstat(handle.fileno()))

    def _rotate(self) -> None:
        assert self._handle is not None
        self._handle.close()
        self._handle = None
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.backups > 0:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)


def _read_file_lines(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.readlines()
    except FileNotFoundError:
        return []


def tail_lines(log_dir: Path, service: str, count: int) -> list[LogLine]:
    """Return the last `count` lines of a service, reading rotated files if needed."""
    path = log_path(log_dir, service)
    files = [path] + sorted(
        path.parent.glob(f"{path.name}.[0-9]*"),
        key=lambda item: int(item.name.rsplit(".", 1)[1]),
    )
    collected: deque[str] = deque(maxlen=count)
    for file in reversed(files):
        collected.extend(_read_file_lines(file))
    lines: list[LogLine] = []
    previous = ""
    for raw in collected:
        line = parse_line(service, raw, previous)
        previous = line.timestamp
        lines.append(line)
    return lines


def merge_lines(streams: Iterable[Iterable[LogLine]]) -> list[LogLine]:
    """Merge per-service line lists, each in time order, into one time order."""
    return list(heapq.merge(*streams, key=lambda line: line.timestamp))


def read_merged(log_dir: Path, services: Iterable[str], count: int) -> list[LogLine]:
    """Return the last `count` lines of all `services`, merged in time order."""
    merged = merge_lines(tail_lines(log_dir, name, count) for name in services)
    return merged[-count:] if count > 0 else []


class _FollowedFile:
    """A log file read incrementally; switches to the new file after rotation."""

    def __init__(self, service: str, path: Path, from_end: bool) -> None:
        self.service = service
        self.path = path
        self.handle: IO[str] | None = None
        self.previous = ""
        self._open(seek_end=from_end)

    def _open(self, seek_end: bool) -> None:
        try:
            self.handle = open(self.path, encoding="utf-8", errors="replace")
        except FileNotFoundError:
            self.handle = None
            return
        if seek_end:
            self.handle.seek(0, os.SEEK_END)

    def read_new(self) -> list[LogLine]:
        lines = self._drain()
        if self.handle is None or not self._same_file():
            if self.handle is not None:
                self.handle.close()
            self._open(seek_end=False)
            lines.extend(self._drain())
        return lines

    def _same_file(self) -> bool:
        assert self.handle is not None
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return True
        return os.path.samestat(on_disk, os.fstat(self.handle.fileno()))

    def _drain(self) -> list[LogLine]:
        if self.handle is None:
            return []
        lines = []
        while True:
            position = self.handle.tell()
            raw = self.handle.readline()
            if not raw:
                break
            if not raw.endswith("\n"):
                # A line still being written; read it whole next time.
                self.handle.seek(position)
                break
            line = parse_line(self.service, raw, self.previous)
            self.previous = line.timestamp
            lines.append(line)
        return lines

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def follow(
    log_dir: Path,
    services: Iterable[str],
    stop: Callable[[], bool] = lambda: False,
    interval: float = FOLLOW_INTERVAL,
) -> Iterator[LogLine]:
    """Yield lines appended to the services' logs until `stop()` returns True.

    Starts at the end of each file as it is when `follow` is called, and keeps
    reading across rotation and across a log file being deleted and recreated.
    """
    files = [
        _FollowedFile(name, log_path(log_dir, name), from_end=True) for name in services
    ]
    return _follow_files(files, stop, interval)


def _follow_files(
    files: list[_FollowedFile], stop: Callable[[], bool], interval: float
) -> Iterator[LogLine]:
    try:
        while not stop():
            batch = merge_lines(followed.read_new() for followed in files)
            yield from batch
            if not batch:
                time.sleep(interval)
    finally:
        for followed in files:
            followed.close()
