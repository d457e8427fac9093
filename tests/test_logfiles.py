"""Tests of the rotating log writer and of merged and followed reading."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from jarvisctl.logfiles import (
    RotatingLogWriter,
    follow,
    format_line,
    log_path,
    parse_line,
    read_merged,
    tail_lines,
)

# A base time, 2026-12-04 in local time give or take a day, for fixed timestamps.
BASE_TIME = 1796400000.0
# Bound on waiting for a followed line; the follower polls every 20 ms.
FOLLOW_TIMEOUT = 10.0


def test_format_line_parses_back() -> None:
    line = parse_line("auth", format_line("hello world", BASE_TIME + 0.123))

    assert line.text == "hello world"
    assert line.timestamp.endswith(".123")
    assert len(line.timestamp) == len("2026-12-04T15:40:01.123")


def test_parse_line_without_timestamp_keeps_previous() -> None:
    line = parse_line(
        "auth", "Traceback (most recent call last):\n", "2026-12-04T15:40:01.123"
    )

    assert line.timestamp == "2026-12-04T15:40:01.123"
    assert line.text == "Traceback (most recent call last):"


def test_writer_rotates_at_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "svc.log"
    writer = RotatingLogWriter(path, max_bytes=200, backups=2)

    for index in range(40):
        writer.write_line(f"line {index:03d} " + "x" * 20, BASE_TIME + index)
    writer.close()

    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["svc.log", "svc.log.1", "svc.log.2"]
    assert path.stat().st_size < 200
    assert (tmp_path / "svc.log.1").stat().st_size <= 200
    last = path.read_text().splitlines()[-1]
    assert "line 039" in last


def test_writer_reopens_deleted_file(tmp_path: Path) -> None:
    path = tmp_path / "svc.log"
    writer = RotatingLogWriter(path)
    writer.write_line("before delete")

    path.unlink()
    writer.write_line("after delete")
    writer.close()

    assert path.exists()
    assert "after delete" in path.read_text()
    assert "before delete" not in path.read_text()


def test_writer_is_safe_across_threads(tmp_path: Path) -> None:
    path = tmp_path / "svc.log"
    writer = RotatingLogWriter(path, max_bytes=10_000, backups=50)

    def write_many(tag: str) -> None:
        for index in range(200):
            writer.write_line(f"{tag} {index}")

    threads = [threading.Thread(target=write_many, args=(tag,)) for tag in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()

    lines = tail_lines(tmp_path, "svc", 10_000)
    assert len(lines) == 800
    assert all(line.timestamp for line in lines)


def test_tail_lines_reads_rotated_files(tmp_path: Path) -> None:
    writer = RotatingLogWriter(log_path(tmp_path, "svc"), max_bytes=150, backups=3)
    for index in range(12):
        writer.write_line(f"entry {index:02d}", BASE_TIME + index)
    writer.close()

    lines = tail_lines(tmp_path, "svc", 8)

    assert [line.text for line in lines] == [f"entry {i:02d}" for i in range(4, 12)]


def test_read_merged_orders_by_time(tmp_path: Path) -> None:
    auth = RotatingLogWriter(log_path(tmp_path, "auth"))
    tickets = RotatingLogWriter(log_path(tmp_path, "tickets"))
    auth.write_line("auth first", BASE_TIME + 1)
    tickets.write_line("tickets second", BASE_TIME + 2)
    auth.write_line("auth third", BASE_TIME + 3)
    tickets.write_line("tickets fourth", BASE_TIME + 4)
    auth.close()
    tickets.close()

    merged = read_merged(tmp_path, ["tickets", "auth"], 10)
    last_two = read_merged(tmp_path, ["tickets", "auth"], 2)

    assert [line.text for line in merged] == [
        "auth first",
        "tickets second",
        "auth third",
        "tickets fourth",
    ]
    assert [line.service for line in merged] == ["auth", "tickets", "auth", "tickets"]
    assert [line.text for line in last_two] == ["auth third", "tickets fourth"]


def test_read_merged_skips_missing_service(tmp_path: Path) -> None:
    writer = RotatingLogWriter(log_path(tmp_path, "auth"))
    writer.write_line("only line", BASE_TIME)
    writer.close()

    merged = read_merged(tmp_path, ["auth", "registry"], 5)

    assert [line.text for line in merged] == ["only line"]


def test_follow_reads_across_rotation(tmp_path: Path) -> None:
    path = log_path(tmp_path, "svc")
    writer = RotatingLogWriter(path, max_bytes=70, backups=3)
    writer.write_line("old line before follow", BASE_TIME)
    deadline = time.monotonic() + FOLLOW_TIMEOUT
    lines = follow(
        tmp_path, ["svc"], stop=lambda: time.monotonic() > deadline, interval=0.02
    )
    seen: list[str] = []

    for index in range(6):
        writer.write_line(f"new {index}", BASE_TIME + 1 + index)
        seen.append(next(lines).text)
    path.unlink()
    writer.write_line("after delete", BASE_TIME + 10)
    seen.append(next(lines).text)
    writer.close()

    assert seen == [f"new {index}" for index in range(6)] + ["after delete"]
    assert (tmp_path / "svc.log.2").exists()
